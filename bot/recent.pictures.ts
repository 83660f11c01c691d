/**
 * The pictures image-to-image may start from again soon, in this process's memory, bounded by bytes: each generated
 * image (key `<jobId>#<n>`) and each uploaded starting picture (key `upload:<sha256>`). Vary and reroll read them
 * from here; on a miss (another front, a restart, an old job) a generated image is redrawn from its job's stored
 * settings instead, which the seeded pipeline reproduces (imagine.command.ts `sourcePicture`). Uploads cannot be
 * redrawn: a reroll of an upload's job after it left this cache asks for the picture again.
 */
export const DEFAULT_RECENT_PICTURE_BYTES = 64 * 1024 * 1024;

export class RecentPictures {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = DEFAULT_RECENT_PICTURE_BYTES) {}

  static generated(jobId: string, index: number): string { return `${jobId}#${index}`; }
  static upload(sha256: string): string { return `upload:${sha256}`; }

  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit) { this.entries.delete(key); this.entries.set(key, hit); }   // most recently used last
    return hit;
  }

  set(key: string, picture: Buffer): void {
    if (picture.length > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) { this.bytes -= old.length; this.entries.delete(key); }
    this.entries.set(key, picture);
    this.bytes += picture.length;
    for (const [oldest, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= value.length;
    }
  }

  get size(): number { return this.entries.size; }
}
