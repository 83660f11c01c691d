/**
 * Throttles progress edits of one status message: at most one edit per `intervalMs`, always the latest state, one edit
 * in flight at a time, and nothing once closed. A diffusion job reports a step every few hundred milliseconds, so most
 * states are skipped on purpose. Both platforms need this pacing: Discord rate-limits webhook edits per interaction
 * token (about five per few seconds); Slack rate-limits chat.update (Tier 3, about 50 a minute per workspace, and
 * message writes about one per second per channel).
 * @see https://docs.slack.dev/apis/web-api/rate-limits
 */
export class StatusThrottle<T> {
  private latest: { value: T } | null = null;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly send: (value: T) => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    if (!Number.isFinite(intervalMs) || intervalMs < 0) {
      throw new RangeError(`Expected \`intervalMs\` to be a finite number >= 0, got \`${intervalMs}\``);
    }
  }

  /** Offer a new state; it replaces any state not yet sent. */
  push(value: T): void {
    if (this.closed) return;
    this.latest = { value };
    this.schedule();
  }

  /** Stop sending and wait for an edit already on the wire, so the caller's final edit lands after it. */
  async close(): Promise<void> {
    this.closed = true;
    this.latest = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  private schedule(): void {
    if (this.closed || this.timer || this.inFlight || !this.latest) return;
    const wait = this.lastSentAt + this.intervalMs - Date.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  private flush(): void {
    if (this.closed || !this.latest) return;
    const { value } = this.latest;
    this.latest = null;
    this.lastSentAt = Date.now();
    this.inFlight = this.send(value)
      .catch(this.onError)
      .finally(() => {
        this.inFlight = null;
        this.schedule();
      });
  }
}
