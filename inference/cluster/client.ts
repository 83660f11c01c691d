/**
 * The front's side of the cluster queue: submit a job to Redis, follow it to its result, cancel any job by id. What it
 * returns has the shape of bot/'s InferencePort and JobHandle (adapters wire it in), so bot/ cannot tell it from the
 * in-process core: queue positions, `start`, step progress, the typed result or a PictalkError rebuilt from JSON.
 *
 * Events come over one pub/sub channel; pub/sub loses what is published while a connection is down, so every second
 * the client also reads the state of its unsettled jobs and settles any whose outcome it missed.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { PictalkError, answeredElsewhereError, describe, isPictalkError } from '../../common/errors.js';
import { DEFAULT_TIMEOUT_MS, JOB_KINDS, checkSubmission, timeout } from '../core.js';
import type { JobInput, JobKind, JobOwner, JobResult, Progress } from '../types.js';
import { decodeResult, encode } from './codec.js';
import { DEFAULT_PREFIX, REDIS_CONNECT_MS, closeQuietly, connect, keys, readStats, ready, scripts, unreachable, type RedisLog, type Scripts } from './redis.js';

export interface ClusterClientOptions {
  redisUrl: string;
  prefix?: string;
  /** Jobs waiting in the whole cluster, all kinds together (default 100). */
  maxQueued?: number;
  /** One user's unfinished jobs in the whole cluster (default 10). */
  maxPerUser?: number;
  /** Run-time limit per kind, start to result, enforced by the worker (defaults as the in-process core's). */
  timeoutMs?: Partial<Record<JobKind, number>>;
  /** How long a settled job's result stays in Redis for a front to fetch (default 3600 s). */
  resultTtlSecs?: number;
  log?: RedisLog;
  /** How long `open` waits for Redis (default 10 s). */
  connectMs?: number;
  /**
   * How long this front's claim to follow a job lasts without renewal (default 10 s): after a front stops, another
   * front claims its jobs within about this long and sends their replies.
   */
  followMs?: number;
}

type Events = { position: (position: number) => void; start: () => void; progress: (progress: Progress) => void };
type Listeners = { [E in keyof Events]: Set<Events[E]> };

/** An input waits at most this long for a worker before Redis forgets it (a day: a queue that long has other problems). */
const INPUT_TTL_SECS = 86_400;
/** How long a front keeps its claim on a job after the result came, unless it releases it sooner. */
const HOLD_MS = 10 * 60_000;

class RemoteHandle {
  private readonly listeners: Listeners = { position: new Set(), start: new Set(), progress: new Set() };
  private lastPosition = -2;
  settled = false;
  /** Part of another job's reply (`submit`'s `part`): not followed under a lease of its own. */
  part = false;
  readonly result: Promise<JobResult>;
  resolve!: (value: JobResult) => void;
  reject!: (error: PictalkError) => void;

  constructor(readonly id: string, readonly kind: JobKind, private readonly client: ClusterClient) {
    this.result = new Promise<JobResult>((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
    this.result.catch(() => undefined);   // a caller that drops the handle must not crash the process
  }

  async position(): Promise<number> {
    if (this.settled) return -1;
    const [position] = await this.client.positions(this.kind, [this.id]);
    return this.settled ? -1 : position ?? -1;
  }

  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    const set = this.listeners[event] as Set<Events[E]>;
    set.add(listener);
    return () => { set.delete(listener); };
  }

  cancel(): Promise<boolean> {
    return this.client.cancel(this.id);
  }

  get waitsForPosition(): boolean {
    return !this.settled && this.lastPosition !== 0 && this.listeners.position.size > 0;
  }

  setPosition(position: number): void {
    if (this.settled || position < 0 || position === this.lastPosition) return;
    this.lastPosition = position;
    this.emit('position', position);
  }

  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    if (this.settled) return;
    for (const listener of this.listeners[event] as Set<(...a: Parameters<Events[E]>) => void>) {
      try {
        listener(...args);
      } catch (error) {
        process.emitWarning(`A '${event}' listener of job ${this.id} threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  finish(): void {
    this.settled = true;
    for (const set of Object.values(this.listeners)) set.clear();
  }
}

export class ClusterClient {
  private readonly handles = new Map<string, RemoteHandle>();
  private readonly scripts: Scripts;
  private readonly keys: ReturnType<typeof keys>;
  private readonly maxQueued: number;
  private readonly maxPerUser: number;
  private readonly timeouts: Record<JobKind, number>;
  private readonly resultTtl: number;
  private readonly poll: NodeJS.Timeout;
  private readonly refreshing = new Set<JobKind>();
  private readonly renewal: NodeJS.Timeout;
  /**
   * The jobs this front follows, with until when: unbounded while their result is awaited, then `HOLD_MS` more or until
   * `release` (the bot still builds the reply after the result: alt text, the voice message).
   */
  private readonly followed = new Map<string, number>();
  private readonly followMs: number;
  private readonly log: RedisLog;
  /** This front's name in the follow leases. */
  readonly frontId = randomUUID();
  private closed = false;

  private constructor(private readonly redis: Redis, private readonly sub: Redis, options: ClusterClientOptions) {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    this.scripts = scripts(redis, prefix);
    this.keys = keys(prefix);
    this.maxQueued = options.maxQueued ?? 100;
    this.maxPerUser = options.maxPerUser ?? 10;
    this.timeouts = { ...DEFAULT_TIMEOUT_MS, ...options.timeoutMs };
    this.resultTtl = options.resultTtlSecs ?? 3600;
    sub.on('message', (_channel: string, message: string) => this.onEvent(message));
    this.poll = setInterval(() => { this.reconcile().catch(() => undefined); }, 1000);
    this.poll.unref();
    this.followMs = options.followMs ?? 10_000;
    this.log = options.log ?? { warn: (message: string) => process.emitWarning(message) };
    this.renewal = setInterval(() => { this.renewFollows().catch(() => undefined); }, Math.max(100, Math.round(this.followMs / 3)));
    this.renewal.unref();
  }

  /** Connect and subscribe; rejects naming PICTALK_REDIS_URL when Redis does not answer. */
  static async open(options: ClusterClientOptions): Promise<ClusterClient> {
    const log = options.log ?? { warn: (message: string) => process.emitWarning(message) };
    const redis = connect(options.redisUrl, 'commands', log, 'pictalk-front');
    const sub = connect(options.redisUrl, 'blocking', log, 'pictalk-front-events');
    try {
      await Promise.all([ready(redis, options.connectMs ?? REDIS_CONNECT_MS), ready(sub, options.connectMs ?? REDIS_CONNECT_MS)]);
      const client = new ClusterClient(redis, sub, options);
      // the queue's line changes, for all; the events of the jobs this front follows, for it alone
      await sub.subscribe(client.keys.events, client.keys.frontEvents(client.frontId));
      return client;
    } catch (error) {
      await closeQuietly(redis, sub);
      throw error;
    }
  }

  /** Accept a job into the cluster's fair line, or reject with `queue.busy` (full, this user's limit, Redis away). */
  async submit(owner: JobOwner, input: JobInput, options: { timeoutMs?: number; jobId?: string; part?: boolean } = {}): Promise<RemoteHandle> {
    const kind = checkSubmission(owner, input);
    const timeoutMs = options.timeoutMs === undefined ? this.timeouts[kind] : timeout('timeoutMs', options.timeoutMs, 'input.invalid');
    const id = options.jobId ?? randomUUID();
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new PictalkError('input.invalid', `Expected \`jobId\` to be a non-empty string, got ${describe(id)}`);
    }
    if (this.closed) throw new PictalkError('queue.busy', 'This process is shutting down and takes no new jobs; try again shortly', { closed: true });

    const handle = new RemoteHandle(id, kind, this);
    this.handles.set(id, handle);       // before the submit: a fast worker's start must find it
    if (options.part) handle.part = true;
    else this.followed.set(id, Number.POSITIVE_INFINITY);
    let reply;
    try {
      reply = await this.scripts.submit({
        id, kind, space: owner.spaceId, user: owner.userId, input: encode(input),
        maxQueued: this.maxQueued, maxPerUser: this.maxPerUser, timeoutMs, inputTtl: INPUT_TTL_SECS,
        front: this.frontId, followMs: options.part ? 0 : this.followMs,   // a reply's part has no lease of its own
      });
    } catch (error) {
      this.handles.delete(id);
      this.followed.delete(id);
      throw unreachable(error);
    }
    const [verdict, count] = reply;
    if (verdict !== 'ok') {
      this.handles.delete(id);
      this.followed.delete(id);
      if (verdict === 'duplicate') throw new PictalkError('input.invalid', `Expected \`jobId\` to be a new, non-empty string, got ${describe(id)} (already in use)`);
      if (verdict === 'total') {
        throw new PictalkError('queue.busy', `The queue is full (${count} of ${this.maxQueued} jobs waiting); try again in a little while`,
          { scope: 'total', queued: count, limit: this.maxQueued });
      }
      throw new PictalkError('queue.busy', `You already have ${count} jobs waiting or running (the limit is ${this.maxPerUser}); wait for one to finish`,
        { scope: 'user', queued: count, limit: this.maxPerUser });
    }
    return handle;
  }

  /**
   * Follow a job this process did not submit (a front restarted while its jobs ran): its handle, or undefined when
   * the cluster does not know it or it has settled and its result expired.
   */
  async attach(id: string): Promise<RemoteHandle | undefined> {
    const existing = this.handles.get(id);
    if (existing) return existing;
    const kind = await this.redis.hget(this.keys.job(id), 'kind');
    if (!kind || !JOB_KINDS.includes(kind as JobKind)) return undefined;
    const handle = new RemoteHandle(id, kind as JobKind, this);
    this.handles.set(id, handle);
    this.followed.set(id, Number.POSITIVE_INFINITY);
    await this.reconcile([handle]);
    return handle;
  }

  /**
   * Claim, for this front, the jobs of these ids that the cluster can still deliver and no live front follows (their
   * front stopped): returns the ids claimed; follow each with `attach`.
   */
  async claim(ids: readonly string[]): Promise<string[]> {
    // never a job this front follows itself (its lease lapsed while Redis was away): it answers that job already
    const others = ids.filter((id) => !this.followed.has(id));
    try { return await this.scripts.claim(this.frontId, this.followMs, others); } catch (error) { throw unreachable(error); }
  }

  /**
   * One token of a rate-limit bucket shared by every front (`key`: a user), capacity in a burst, refilled over
   * `windowMs`: whether it was there, and when the next one will be.
   */
  async take(key: string, capacity: number, windowMs: number): Promise<{ ok: boolean; retryAfterMs: number }> {
    return this.scripts.take(key, capacity, windowMs);
  }

  /**
   * This front is done with a job (its reply went out, or it failed): its claim becomes a mark that the job is answered,
   * so no other front claims it, and one that followed it too steps aside.
   */
  release(jobId: string): void {
    if (!this.followed.delete(jobId) || this.closed) return;
    this.scripts.answered(this.frontId, this.resultTtl, [jobId]).catch(() => undefined);
  }

  /**
   * Keep this front's leases on the jobs it follows. A lease that lapsed (Redis was away, or this process stalled,
   * longer than `followMs`) is taken back; one that another front claimed meanwhile is left to it, and this front
   * stops renewing it. Should both fronts reach the job's result, the shared store's settlement lets one answer.
   */
  private async renewFollows(): Promise<void> {
    const now = Date.now();
    for (const [id, until] of this.followed) if (until < now) this.followed.delete(id);
    const followed = [...this.followed.keys()];
    if (followed.length === 0) return;
    const taken = await this.scripts.renew(this.frontId, this.followMs, followed);
    for (const id of taken) {
      this.followed.delete(id);
      const handle = this.handles.get(id);
      this.log.warn(handle ? 'another front took over a job this front followed (its lease lapsed); it answers the job, this front steps aside'
        : 'another front took over a job whose reply this front is building (its lease lapsed); the first to settle it answers', { jobId: id });
      if (handle) this.stepAside(handle);
    }
  }

  /**
   * Another front follows this job now, or has answered it: this front's handle ends with `answeredElsewhereError`
   * (bot/ says nothing, charges nothing, writes nothing), so the requester gets one reply and one set of progress
   * messages, the other front's. Not for a reply's parts: they have no lease of their own.
   */
  private stepAside(handle: RemoteHandle): void {
    if (handle.settled || handle.part) return;
    handle.finish();
    this.handles.delete(handle.id);
    this.followed.delete(handle.id);
    handle.reject(answeredElsewhereError(handle.id));
  }

  /** Cancel a job by id, whichever front submitted it and whichever worker runs it. */
  async cancel(jobId: string): Promise<boolean> {
    const error = new PictalkError('job.cancelled', 'The job was cancelled by its requester');
    try {
      return await this.scripts.cancel(jobId, JSON.stringify(error), this.resultTtl);
    } catch (failure) {
      throw unreachable(failure);
    }
  }

  /** Jobs waiting and running per kind in the whole cluster, read from Redis. */
  stats(): Promise<{ queued: Record<JobKind, number>; running: Record<JobKind, number> }> {
    return readStats(this.redis, this.keys);
  }

  /** Of these ids, the jobs the cluster can still deliver: unsettled, or settled with the result still kept. */
  async attachable(ids: readonly string[]): Promise<string[]> {
    try { return await this.scripts.attachable(ids); } catch (error) { throw unreachable(error); }
  }

  /** Whether Redis answers now (for /healthz). */
  async ping(): Promise<boolean> {
    try { return (await this.redis.ping()) === 'PONG'; } catch { return false; }
  }

  positions(kind: JobKind, ids: readonly string[]): Promise<number[]> {
    return this.scripts.positions(kind, ids).catch((error: unknown) => { throw unreachable(error); });
  }

  /**
   * Stopping a front: let go of the jobs whose results have not come (their follow leases are deleted, so another
   * front takes them over at once, and their handles here end with `answeredElsewhereError`, so this process says
   * nothing more about them),
   * then wait, renewing their leases, until the replies being built from results that did come are out (`release`),
   * at most `timeoutMs`. The parts of those replies (alt text, voice) run on, and can still be submitted meanwhile;
   * `close` comes after.
   */
  async letGo(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    // a reply's parts (alt text, voice) run on: the replies being built need them
    const waiting = [...this.handles.values()].filter((handle) => !handle.part);
    // settled for this process: no event or poll resolves it now, and bot/ ends the command quietly at once, so its
    // conversation sends no progress edit late, over the reply of the front that takes the job over
    for (const handle of waiting) this.stepAside(handle);
    await this.scripts.release(this.frontId, waiting.map((handle) => handle.id)).catch(() => undefined);
    const end = Date.now() + timeoutMs;
    while (this.followed.size > 0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 25));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    clearInterval(this.renewal);
    await closeQuietly(this.sub, this.redis);
  }

  private onEvent(message: string): void {
    let event: { e?: string; id?: string; kind?: JobKind; stage?: string; step?: number; total?: number; preview?: { png?: unknown; width?: unknown; height?: unknown } };
    try { event = JSON.parse(message) as typeof event; } catch { return; }
    if (event.e === 'line' && event.kind) { this.refreshPositions(event.kind); return; }
    const handle = event.id ? this.handles.get(event.id) : undefined;
    if (!handle) return;
    if (event.e === 'start') {
      handle.setPosition(0);
      handle.emit('start');
    } else if (event.e === 'progress') {
      const preview = event.preview && typeof event.preview.png === 'string'
        ? { preview: { png: Buffer.from(event.preview.png, 'base64'), width: Number(event.preview.width), height: Number(event.preview.height) } } : {};
      handle.emit('progress', { stage: String(event.stage), step: Number(event.step), total: Number(event.total), ...preview });
    } else if (event.e === 'settled') {
      this.reconcile([handle]).catch(() => undefined);
    }
  }

  /** Tell waiting handles with position listeners their new place; at most one refresh per kind in flight. */
  private refreshPositions(kind: JobKind): void {
    if (this.refreshing.has(kind)) return;
    const waiting = [...this.handles.values()].filter((h) => h.kind === kind && h.waitsForPosition);
    if (waiting.length === 0) return;
    this.refreshing.add(kind);
    setTimeout(() => {
      const now = [...this.handles.values()].filter((h) => h.kind === kind && h.waitsForPosition);
      this.positions(kind, now.map((h) => h.id))
        // a handle whose job started while the positions were read (its `start` came first) keeps position 0
        .then((positions) => now.forEach((h, i) => { if ((positions[i] ?? 0) > 0 && h.waitsForPosition) h.setPosition(positions[i]!); }))
        .catch(() => undefined)
        .finally(() => this.refreshing.delete(kind));
    }, 50).unref();
  }

  /** Settle the handles whose jobs have settled in Redis (all of them when none are named). */
  private async reconcile(only?: RemoteHandle[]): Promise<void> {
    const handles = (only ?? [...this.handles.values()]).filter((h) => !h.settled);
    if (handles.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const h of handles) {
      pipeline.hmget(this.keys.job(h.id), 'state', 'outcome');
      pipeline.get(this.keys.result(h.id));
      pipeline.get(this.keys.follow(h.id));
    }
    const replies = await pipeline.exec();
    if (!replies) return;
    handles.forEach((handle, i) => {
      const [stateError, fields] = replies[3 * i]!;
      const [resultError, payload] = replies[3 * i + 1]!;
      const [, holder] = replies[3 * i + 2]!;
      if (stateError || resultError || handle.settled) return;
      // another front claimed the job (this one's lease lapsed) or answered it: it replies, not this one
      if (!handle.part && typeof holder === 'string' && holder !== this.frontId) {
        this.log.warn('another front follows a job this front followed (its lease lapsed); it answers the job, this front steps aside', { jobId: handle.id });
        this.stepAside(handle);
        return;
      }
      const [state, outcome] = fields as [string | null, string | null];
      if (state === 'settled' && typeof payload === 'string') this.settle(handle, outcome === 'ok', payload);
      else if (state === null && payload === null) {
        this.settle(handle, false, JSON.stringify(new PictalkError('inference.failed',
          `The ${handle.kind} job is no longer known to the queue (its record expired or Redis lost it)`)));
      }
    });
  }

  private settle(handle: RemoteHandle, ok: boolean, payload: string): void {
    if (handle.settled) return;
    handle.finish();
    this.handles.delete(handle.id);
    // the claim outlives the result a while: the bot still builds the reply from it
    if (this.followed.has(handle.id)) this.followed.set(handle.id, Date.now() + HOLD_MS);
    if (ok) {
      try {
        handle.resolve(decodeResult(payload));
      } catch (error) {
        handle.reject(isPictalkError(error) ? error : new PictalkError('inference.failed', `The ${handle.kind} job's result could not be read: ${String(error)}`));
      }
    } else {
      handle.reject(PictalkError.fromJSON(payload));
    }
  }
}

export type ClusterHandle = RemoteHandle;
