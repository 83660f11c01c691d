/**
 * Test doubles for bot/: a fake inference core that speaks the JobHandle protocol (position/start/progress events,
 * a result promise, cancel), a conversation that records what the bot sent, a manual clock and request builders.
 */
import { EventEmitter } from 'node:events';
import { PictalkError } from '../../common/errors.js';
import type { JobInput, JobOwner, JobResult } from '../../inference/types.js';
import { Bot, type BotOptions } from '../../bot/bot.js';
import type { BotConfigInput } from '../../bot/config.js';
import type { InferencePort, JobHandle, QueueStats, SubmitOptions } from '../../bot/ports.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import type { BotStore } from '../../bot/store.js';
import type { Actor, BotCommand, BotRequest, Conversation, FinishReceipt, JobStatus, Reply } from '../../bot/types.js';

export type Behaviour = (input: JobInput) => JobResult | Promise<JobResult>;

export function defaultResult(input: JobInput): JobResult {
  switch (input.kind) {
    case 'imagine': {
      const r = input.request;
      const seed = r.seed ?? 7;
      const count = r.count ?? 1;
      return {
        kind: 'imagine',
        images: Array.from({ length: count }, (_, i) => ({ png: Buffer.from(`png:${r.prompt}:${seed + i}`), seed: seed + i, width: 64, height: 64 })),
        settings: {
          prompt: r.prompt, negativePrompt: r.negativePrompt ?? '', seed, steps: r.steps ?? 20, guidance: r.guidance ?? 7.5,
          width: 64, height: 64, scheduler: r.scheduler ?? 'pndm', count, candidates: 1,
        },
        model: { name: 'fake', hash: '0' },
        timingsMs: {},
      };
    }
    case 'caption':
      return { kind: 'caption', caption: `A drawing of ${input.request.image.toString().split(':')[1] ?? 'something'}.`, tokens: [], score: -1, timingsMs: {} };
    case 'speak':
      return { kind: 'speak', ogg: Buffer.from(`ogg:${input.request.text}`), durationSecs: 1.5, waveform: new Uint8Array(256), timingsMs: {} };
  }
}

export class FakeJob extends EventEmitter implements JobHandle {
  readonly result: Promise<JobResult>;
  cancelled = false;
  settled = false;
  pos: number;
  private resolveResult!: (result: JobResult) => void;
  private rejectResult!: (error: unknown) => void;

  constructor(readonly id: string, readonly owner: JobOwner, readonly input: JobInput, readonly options: SubmitOptions, position: number) {
    super();
    this.pos = position;
    this.result = new Promise<JobResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.result.catch(() => undefined); // a rejection nobody awaited yet must not crash the test run
  }

  async position(): Promise<number> {
    return this.pos;
  }

  resolve(result: JobResult = defaultResult(this.input)): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveResult(result);
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectResult(error);
  }

  async cancel(): Promise<boolean> {
    if (this.settled) return false;
    this.cancelled = true;
    this.fail(new PictalkError('job.cancelled', `Job ${this.id} was cancelled`));
    return true;
  }
}

/**
 * Jobs resolve on their own (after a position, start and progress event) unless `manual` is set, or a behaviour per
 * kind says otherwise (return a result, throw, or return a promise).
 */
export class FakeCore implements InferencePort {
  readonly jobs: FakeJob[] = [];
  /** true: every job waits for the test; a list: only jobs of those kinds wait. */
  manual: boolean | Array<JobInput['kind']> = false;
  busy = false;
  behaviour: Partial<Record<JobInput['kind'], Behaviour>> = {};
  private counter = 0;

  async submit(owner: JobOwner, input: JobInput, options: SubmitOptions = {}): Promise<JobHandle> {
    if (this.busy) throw new PictalkError('queue.busy', 'The queue is full');
    const id = options.jobId ?? `core-${++this.counter}`;
    const job = new FakeJob(id, owner, input, options, this.pending().length + 1);
    this.jobs.push(job);
    const manual = this.manual === true || (Array.isArray(this.manual) && this.manual.includes(input.kind));
    if (!manual) setImmediate(() => void this.run(job));
    return job;
  }

  async cancel(jobId: string): Promise<boolean> {
    const job = this.jobs.find((j) => j.id === jobId && !j.settled);
    return job ? job.cancel() : false;
  }

  async stats(): Promise<QueueStats> {
    return { queued: { imagine: this.pending().length, caption: 0, speak: 0 }, running: { imagine: 0, caption: 0, speak: 0 } };
  }

  pending(): FakeJob[] {
    return this.jobs.filter((job) => !job.settled);
  }

  of(kind: JobInput['kind']): FakeJob[] {
    return this.jobs.filter((job) => job.input.kind === kind);
  }

  async run(job: FakeJob): Promise<void> {
    if (job.settled) return;
    // As the real core does: position 0 means running, then `start`, then progress.
    job.pos = 0;
    job.emit('position', 0);
    job.emit('start');
    job.emit('progress', { stage: 'denoise', step: 1, total: 2 });
    try {
      const behaviour = this.behaviour[job.input.kind];
      job.resolve(behaviour ? await behaviour(job.input) : defaultResult(job.input));
    } catch (error) {
      job.fail(error);
    }
  }

  /** Wait until `n` jobs have been submitted (commands submit after a few awaits). */
  async waitForJobs(n: number, kind?: JobInput['kind']): Promise<FakeJob[]> {
    // a few turns of the event loop for an in-memory store; up to five seconds for a store over the network
    for (let i = 0; i < 1200; i += 1) {
      const jobs = kind ? this.of(kind) : this.jobs;
      if (jobs.length >= n) return jobs;
      await new Promise((resolve) => (i < 200 ? setImmediate(resolve) : setTimeout(resolve, 5)));
    }
    throw new Error(`expected ${n} ${kind ?? ''} jobs, got ${(kind ? this.of(kind) : this.jobs).length}`);
  }
}

export class RecordingConversation implements Conversation {
  readonly statuses: JobStatus[] = [];
  readonly replies: Reply[] = [];
  receipt: FinishReceipt | undefined;

  status(update: JobStatus): void {
    this.statuses.push(update);
  }

  async finish(reply: Reply): Promise<void | FinishReceipt> {
    this.replies.push(reply);
    return this.receipt;
  }

  get reply(): Reply {
    if (this.replies.length !== 1) throw new Error(`expected exactly one reply, got ${this.replies.length}`);
    return this.replies[0]!;
  }
}

export class ManualClock {
  constructor(public ms = Date.UTC(2025, 5, 1, 12, 0, 0)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

export const silentLogger = { warn: () => undefined, error: () => undefined };

export function actor(userId = 'u1', extra: Partial<Actor> = {}): Actor {
  return { platform: 'discord', userId, spaceId: 'space1', roleIds: [], platformModerator: false, ...extra };
}

export const moderator = (userId = 'mod'): Actor => actor(userId, { platformModerator: true });

let requestCounter = 0;
export function request(command: BotCommand, who: Actor = actor(), id = `req-${++requestCounter}`): BotRequest {
  return { id, actor: who, channelId: 'chan1', command, receivedAt: Date.now() };
}

export interface TestBot {
  bot: Bot;
  core: FakeCore;
  store: BotStore;
  clock: ManualClock;
  /** Handle a request and return its conversation once `handle` resolved. */
  send(command: BotCommand, who?: Actor, id?: string): Promise<RecordingConversation>;
}

export function makeBot(config: BotConfigInput = {}, options: Partial<BotOptions> = {}): TestBot {
  const store = options.store ?? new SqliteStore(':memory:');
  const core = new FakeCore();
  const clock = new ManualClock();
  let seed = 1000;
  const bot = new Bot({
    store, core, clock, logger: silentLogger, randomSeed: () => seed++,
    config: { rateLimit: { capacity: 1000, windowMs: 1000 }, ...config },
    ...options,
  });
  return {
    bot, core, store, clock,
    async send(command, who = actor(), id) {
      const conversation = new RecordingConversation();
      await bot.handle(request(command, who, id), conversation);
      return conversation;
    },
  };
}
