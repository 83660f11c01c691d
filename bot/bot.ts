/**
 * The Bot: one entry point for every adapter. `handle` claims the request id (idempotency), applies the rate limit,
 * dispatches to the command, and sends exactly one reply through the conversation. It never throws: every error
 * becomes a friendly reply with its stable code, and what users should not see goes to the logger.
 */
import { randomInt } from 'node:crypto';
import { PictalkError, describe, isPictalkError, type ErrorCode } from '../common/errors.js';
import { resolveBotConfig, type BotConfig, type BotConfigInput } from './config.js';
import type { CommandContext } from './context.js';
import { ActiveJobs } from './jobs.js';
import { consoleLogger, systemClock, type AltTextCaptioner, type Clock, type InferencePort, type Logger, type SharedRateLimits } from './ports.js';
import { RateLimiter } from './policy/rate-limit.js';
import { isModerator } from './policy/permissions.js';
import { errorReply } from './replies.js';
import type { BotStore, JobRecord } from './store.js';
import type { Actor, BotCommand, BotRequest, Conversation, HandleOutcome, JobStatus, Reply } from './types.js';
import { settleFailure } from './commands/job-lifecycle.js';
import { imagineCommand, redrawImagine, rerollCommand, resumeImagine, varyCommand } from './commands/imagine.command.js';
import { RecentPictures } from './recent.pictures.js';
import { captionCommand, recaption, resumeCaption } from './commands/caption.command.js';
import { cancelCommand, deleteCommand } from './commands/cancel.command.js';
import { statusCommand } from './commands/status.command.js';
import { quotaResetCommand, quotaSetCommand, quotaShowCommand } from './commands/quota.command.js';
import { blocklistAddCommand, blocklistListCommand, blocklistRemoveCommand } from './commands/blocklist.command.js';
import { autoCaptionSetCommand, isAutoCaptionChannel } from './commands/autocaption.command.js';
import { safetySetCommand, safetyShowCommand } from './commands/safety.command.js';
import { settingsResetCommand, settingsSetCommand, settingsShowCommand } from './commands/settings.command.js';
import { PRIVATE_ABLE, resolveSettings } from './user.settings.js';

export interface BotOptions {
  store: BotStore;
  core: InferencePort;
  config?: BotConfigInput;
  clock?: Clock;
  /** Alt text for generated images; by default a caption job on the core for each image. */
  captioner?: AltTextCaptioner;
  logger?: Logger;
  /** Seeds for requests without one; uniform over 0 .. 2^32-1 by default. */
  randomSeed?: () => number;
  /** Rate-limit buckets shared with the other fronts of a cluster; in this process's memory when absent. */
  rateLimits?: SharedRateLimits;
  /** Whether the text-to-image model folder has a safety checker, for `/pictalk` and `/safety show`; absent: unknown. */
  safetyChecker?: boolean;
}

/** How long request ids are remembered: Slack retries within minutes, Discord interactions expire after 15. */
const REQUEST_MEMORY_MS = 24 * 3600 * 1000;

/** The kinds a restarted front follows again (their replies are built from the job record and the result). */
const RESUMABLE = new Set(['imagine', 'caption']);

/**
 * How far back a sweep looks for settled jobs whose reply never went out: as long as the cluster keeps a result (its
 * default), after which there is nothing left to answer with.
 */
const UNANSWERED_WITHIN_MS = 3600 * 1000;

/** Jobs lost to a restart whose requesters are told so: those of the last hour (older news helps nobody). */
const TELL_WITHIN_MS = 3600 * 1000;

/** Commands that never count against the rate limit: stopping a job must always work. */
const UNLIMITED = new Set<BotCommand['name']>(['cancel']);

export class Bot {
  readonly config: BotConfig;
  private readonly store: BotStore;
  private readonly core: InferencePort;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly captioner: AltTextCaptioner | undefined;
  private readonly randomSeed: () => number;
  private readonly jobs = new ActiveJobs();
  private readonly pictures = new RecentPictures();
  private readonly rateLimiter: RateLimiter;
  private readonly sharedRateLimits: SharedRateLimits | undefined;
  private readonly safetyChecker: boolean | undefined;
  private lastPrune = 0;
  /** Jobs failed at start (`recoverInterrupted`) whose requesters `tellInterrupted` tells once the adapters run. */
  private readonly toTell: JobRecord[] = [];
  /** Jobs the last run settled but never answered, which `tellInterrupted` answers again once the adapters run. */
  private readonly toAnswer: JobRecord[] = [];

  constructor(options: BotOptions) {
    this.config = resolveBotConfig(options.config);
    this.store = options.store;
    this.core = options.core;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? consoleLogger;
    this.captioner = options.captioner;
    this.randomSeed = options.randomSeed ?? (() => randomInt(0, 2 ** 32));
    this.rateLimiter = new RateLimiter(this.config.rateLimit, this.clock);
    this.sharedRateLimits = options.rateLimits;
    this.safetyChecker = options.safetyChecker;
  }

  /**
   * Jobs a previous process accepted but never finished: their conversations are gone, but their quota is not spent.
   * Fails them and refunds their reservations; the composition root calls it once at start-up, before the adapters,
   * and `tellInterrupted` once they run (it also answers the jobs that process settled and stopped while answering).
   * Jobs that the queue says are still unfinished (a cluster's, run by a live worker) are left alone.
   */
  async recoverInterrupted(): Promise<number> {
    // a queue shared by a cluster outlives this process: the jobs in the store may be running for other fronts, so
    // the sweep of `resumeInterrupted` decides job by job instead
    if (this.core.claim) return 0;
    const now = this.clock.now();
    const interrupted = await this.store.recoverInterrupted(now);
    if (interrupted.length > 0) {
      this.log.warn(`refunded ${interrupted.length} job(s) interrupted by a restart`, { jobIds: interrupted.map((job) => job.id) });
    }
    this.toTell.push(...interrupted.filter((job) => now - job.createdAt <= TELL_WITHIN_MS));
    // settled, and stopped while their replies went out: answered again once the adapters run
    this.toAnswer.push(...await this.store.unansweredJobs(now - TELL_WITHIN_MS));
    return interrupted.length;
  }

  /**
   * Once the adapters run: tell the requesters of the jobs `recoverInterrupted` failed at start (those of the last
   * hour) that a restart lost their job and refunded it, through the conversation `reconnect` rebuilds from the route
   * kept in each job (Discord: the same deferred reply while its token lasts; Slack: the response_url). Best effort:
   * a job whose conversation cannot be rebuilt stays refunded and unmentioned. Returns how many were told.
   */
  async tellInterrupted(reconnect: (job: JobRecord) => Conversation | undefined): Promise<number> {
    let told = 0;
    for (const job of this.toTell.splice(0)) if (await this.tellLost(job, reconnect(job))) told += 1;
    for (const job of this.toAnswer.splice(0)) if (await this.answerAgain(job, reconnect(job))) told += 1;
    return told;
  }

  /**
   * A job the last run settled and stopped while its reply went out: the reply built again and sent (an imagine job's
   * pictures redrawn from its stored seed, a caption from its stored text, a failure from its code), nothing settled
   * again. True when a conversation took the reply; a job whose conversation cannot be rebuilt is marked answered.
   */
  private async answerAgain(job: JobRecord, conversation: Conversation | undefined): Promise<boolean> {
    if (!conversation || !RESUMABLE.has(job.kind)) {
      await this.answerJob(job, undefined, true, async () => ({ text: '', silent: true, jobId: job.id }));
      return false;
    }
    this.log.warn('answering a job whose reply the last run did not send', { jobId: job.id, kind: job.kind, state: job.state });
    await this.answerJob(job, conversation, true, (ctx) => (job.state !== 'succeeded' ? settleFailure(ctx, job.id, recordedFailure(job))
      : job.kind === 'imagine' ? redrawImagine(ctx, job) : recaption(ctx, job)));
    return true;
  }

  /**
   * Build a job's reply in a command context of its own (`settled`: the job was settled before, so nothing is settled
   * again) and send it through `conversation`, or, with none, only settle and mark the job answered. Never rejects.
   */
  private async answerJob(job: JobRecord, conversation: Conversation | undefined, settled: boolean, build: (ctx: CommandContext) => Promise<Reply>): Promise<void> {
    const request = requestFor(job);
    const safe = this.guard(conversation ?? { status: () => undefined, finish: async () => undefined }, request);
    const ctx = this.context(request, safe);
    if (settled) ctx.settledBefore = true;
    ctx.answering.add(job.id);
    let reply: Reply;
    try {
      reply = await build(ctx);
      if (conversation) reply = await this.markPrivate(request.actor, reply);
    } catch (error) {
      if (!isPictalkError(error)) this.log.error('unexpected error while answering a job', { jobId: job.id, error: String((error as Error)?.stack ?? error) });
      // a settled job's reply that cannot be built: settled as a failure is (a charge given back, and said so)
      reply = settled ? await settleFailure(ctx, job.id, error).catch(() => ({ ...errorReply(error), jobId: job.id })) : { ...errorReply(error), jobId: job.id };
    }
    if (conversation) await this.finish(safe, reply, request, ctx);
    else await this.answered(ctx, reply);
  }

  /** A lost job's requester told so (its quota was refunded): true when a conversation took the reply. */
  private async tellLost(job: JobRecord, conversation: Conversation | undefined): Promise<boolean> {
    if (!conversation) return false;
    const request = requestFor(job);
    const lost = new PictalkError('inference.failed', 'The job was lost when pictalk restarted', { restarted: true });
    try {
      await conversation.finish(await this.markPrivate(request.actor, { ...errorReply(lost, { refunded: true }), jobId: job.id }));
      return true;
    } catch (error) {
      this.log.warn('could not tell a requester that a restart lost their job', { jobId: job.id, error: String(error) });
      return false;
    }
  }

  /**
   * In a cluster, after the adapters start: every few seconds, find the unfinished jobs that no live front follows
   * (their front stopped or restarted), claim them, follow them to their result, settle their quota and reply through
   * the conversation `reconnect` rebuilds from the route kept in each job. A job the queue no longer knows, and that
   * has waited longer than a front takes to submit, is failed and refunded. Returns a function that stops the sweep.
   */
  resumeInterrupted(reconnect: (job: JobRecord) => Conversation | undefined, options: { everyMs?: number; lostAfterMs?: number } = {}): () => void {
    const core = this.core;
    if (!core.claim || !core.attach || !core.attachable) return () => undefined;
    const lostAfterMs = options.lostAfterMs ?? 60_000;
    let running = false;
    const sweep = async (): Promise<void> => {
      if (running) return;
      running = true;
      try {
        const now = this.clock.now();
        const unfinished = await this.store.unfinishedJobs();
        // settled, but their front stopped before the reply went out: answered from the result the queue keeps
        const unanswered = (await this.store.unansweredJobs(now - UNANSWERED_WITHIN_MS)).filter((job) => RESUMABLE.has(job.kind));
        const candidates = [...unfinished, ...unanswered].filter((job) => !this.jobs.get(job.id));
        if (candidates.length === 0) return;
        const deliverable = new Set(await core.attachable!(candidates.map((job) => job.id)));
        const lost = unfinished.filter((job) => !this.jobs.get(job.id) && !deliverable.has(job.id) && now - job.createdAt > lostAfterMs);
        if (lost.length > 0) {
          const failed = await this.store.recoverInterrupted(now, lost.map((job) => job.id));
          if (failed.length > 0) this.log.warn(`refunded ${failed.length} job(s) the queue no longer knows`, { jobIds: failed.map((job) => job.id) });
          // this front failed them (the store's transaction picks each once): it tells their requesters
          for (const job of failed) void this.tellLost(job, reconnect(job));
        }
        const orphans = candidates.filter((job) => deliverable.has(job.id) && RESUMABLE.has(job.kind));
        const claimed = new Set(orphans.length > 0 ? await core.claim!(orphans.map((job) => job.id)) : []);
        for (const job of orphans.filter((j) => claimed.has(j.id))) {
          this.resume(job, reconnect(job)).catch((error: unknown) => this.log.error('following a job again failed', { jobId: job.id, error: String(error) }));
        }
      } catch (error) {
        this.log.warn('looking for jobs without a front failed; trying again shortly', { error: String(error) });
      } finally {
        running = false;
      }
    };
    void sweep();
    const timer = setInterval(() => { void sweep(); }, options.everyMs ?? 5000);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async resume(job: JobRecord, conversation: Conversation | undefined): Promise<void> {
    // settled by a front that stopped before its reply went out: answer from the result, settle nothing again
    const settled = job.state !== 'queued' && job.state !== 'running';
    this.log.warn(settled ? 'answering a job whose front stopped before its reply went out' : 'following a job whose front stopped',
      { jobId: job.id, kind: job.kind, reply: conversation ? 'rebuilt' : 'none' });
    await this.answerJob(job, conversation, settled, async (ctx) => {
      const handle = await this.core.attach!(job.id);
      const reply = !handle
        ? await settleFailure(ctx, job.id, new PictalkError('inference.failed', 'The job was lost while pictalk restarted; please send it again', { restarted: true }))
        : settled && job.state !== 'succeeded'
          ? await settleFailure(ctx, job.id, await failureOf(job, handle.result))
          : job.kind === 'imagine' ? await resumeImagine(ctx, job, handle) : await resumeCaption(ctx, job, handle);
      if (!conversation) {
        this.log.warn('a job finished after a restart, but its conversation cannot be rebuilt; its quota is settled', { jobId: job.id, code: reply.error?.code });
      }
      return reply;
    });
  }

  /** Handle one request; resolves when its one reply has been handed to `conversation.finish`. Never rejects. */
  async handle(request: BotRequest, conversation: Conversation): Promise<HandleOutcome> {
    const safe = this.guard(conversation, request);
    let reply: Reply;
    let ctx: CommandContext | undefined;
    try {
      checkRequest(request);
      const fresh = await this.store.claimRequest({
        id: request.id, spaceId: request.actor.spaceId, userId: request.actor.userId,
        command: request.command.name, receivedAt: request.receivedAt,
      });
      // A retry or a double delivery: the first delivery replies, this one must not start anything.
      if (!fresh) return { duplicate: true };
      // housekeeping off the request's path: a request is not held up (or reordered) by the hourly prune
      this.pruneRequests().catch((error: unknown) => this.log.warn('pruning old request ids failed', { error: String(error) }));
      if (!UNLIMITED.has(request.command.name)) await this.takeToken(`${request.actor.spaceId}\u0000${request.actor.userId}`);
      ctx = this.context(request, safe);
      reply = await this.dispatch(ctx, request.command);
      if (PRIVATE_ABLE.has(request.command.name)) reply = await this.markPrivate(request.actor, reply);
    } catch (error) {
      if (!isPictalkError(error)) this.log.error('unexpected error in a command', { requestId: request?.id, error: String((error as Error)?.stack ?? error) });
      reply = errorReply(error);
    }
    await this.finish(safe, reply, request, ctx);
    return reply.jobId ? { duplicate: false, jobId: reply.jobId } : { duplicate: false };
  }

  /** The rate limit: the cluster's shared bucket, or this process's own while the shared one cannot be reached. */
  private async takeToken(key: string): Promise<void> {
    if (this.sharedRateLimits) {
      let verdict: { ok: boolean; retryAfterMs: number } | undefined;
      try {
        verdict = await this.sharedRateLimits.take(key, this.config.rateLimit.capacity, this.config.rateLimit.windowMs);
      } catch {
        verdict = undefined;      // Redis away: the queue will say busy anyway; keep limiting in this process meanwhile
      }
      if (verdict) {
        if (!verdict.ok) {
          throw new PictalkError('rate.limited', `Too many commands: ${this.config.rateLimit.capacity} per ${this.config.rateLimit.windowMs} ms allowed`,
            { retryAfterMs: verdict.retryAfterMs });
        }
        return;
      }
    }
    this.rateLimiter.take(key);
  }

  private async pruneRequests(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastPrune < 3600 * 1000) return;
    this.lastPrune = now;
    await this.store.pruneRequests(now - REQUEST_MEMORY_MS);
  }

  /** Moderator as bot/ sees it (platform flag or a configured role): adapters may use it to show moderator commands. */
  isModerator(actor: Actor): boolean {
    return isModerator(actor, this.config);
  }

  /**
   * Whether this user's replies go to them alone (their `private` setting, else the space's): adapters ask before
   * they acknowledge, so the deferred reply and the progress are private from the start (Discord: flag 64; Slack: no
   * public status message). bot/ also marks the final reply ephemeral, so a late or failed look-up still keeps the
   * result private.
   */
  async privateReplies(actor: Actor): Promise<boolean> {
    return (await resolveSettings(this.store, actor.spaceId, actor.userId)).private === true;
  }

  /** The reply made ephemeral when the user wants private replies; a failed look-up leaves it as it is (logged). */
  private async markPrivate(actor: Actor, reply: Reply): Promise<Reply> {
    if (reply.ephemeral) return reply;
    try {
      return (await this.privateReplies(actor)) ? { ...reply, ephemeral: true } : reply;
    } catch (error) {
      this.log.warn('reading the private-replies setting failed; replying as usual', { error: String(error) });
      return reply;
    }
  }

  /** Slack: should an image shared in this channel be captioned without a command? */
  isAutoCaptionChannel(spaceId: string, channelId: string): Promise<boolean> {
    return isAutoCaptionChannel(this.store, spaceId, channelId);
  }

  private dispatch(ctx: CommandContext, command: BotCommand): Promise<Reply> | Reply {
    switch (command.name) {
      case 'imagine': return imagineCommand(ctx, command.options);
      case 'reroll': return rerollCommand(ctx, command.jobId);
      case 'vary': return varyCommand(ctx, command.jobId, command.index);
      case 'caption': return captionCommand(ctx, command.attachment, command.voice, command.auto === true);
      case 'cancel': return cancelCommand(ctx, command.jobId);
      case 'delete': return deleteCommand(ctx, command.jobId);
      case 'status': return statusCommand(ctx);
      case 'quota.set': return quotaSetCommand(ctx, command.target, command.kind, command.limit);
      case 'quota.show': return quotaShowCommand(ctx, command.target);
      case 'quota.reset': return quotaResetCommand(ctx, command.target);
      case 'blocklist.add': return blocklistAddCommand(ctx, command.pattern);
      case 'blocklist.remove': return blocklistRemoveCommand(ctx, command.pattern);
      case 'blocklist.list': return blocklistListCommand(ctx);
      case 'autocaption.set': return autoCaptionSetCommand(ctx, command.channelId, command.enabled);
      case 'safety.show': return safetyShowCommand(ctx);
      case 'safety.set': return safetySetCommand(ctx, command.mode, command.channelId);
      case 'settings.show': return settingsShowCommand(ctx, command.scope);
      case 'settings.set': return settingsSetCommand(ctx, command.scope, command.values);
      case 'settings.reset': return settingsResetCommand(ctx, command.scope, command.key);
      default: {
        const unknown: never = command;
        throw new PictalkError('input.invalid', `Unknown command ${describe((unknown as { name?: unknown }).name)}`);
      }
    }
  }

  private context(request: BotRequest, conversation: Conversation): CommandContext {
    const ctx: CommandContext = {
      request, conversation, store: this.store, core: this.core, config: this.config, clock: this.clock, log: this.log,
      jobs: this.jobs, randomSeed: this.randomSeed, pictures: this.pictures, answering: new Set(),
    };
    if (this.captioner) ctx.captioner = this.captioner;
    if (this.safetyChecker !== undefined) ctx.safetyChecker = this.safetyChecker;
    return ctx;
  }

  /** The conversation as commands see it: status updates that throw are logged, not fatal. */
  private guard(conversation: Conversation, request: BotRequest): Conversation {
    return {
      status: (update: JobStatus) => {
        try {
          conversation.status(update);
        } catch (error) {
          this.log.warn('conversation.status threw', { requestId: request?.id, error: String(error) });
        }
      },
      finish: (reply: Reply) => conversation.finish(reply),
      ...(conversation.route ? { route: () => conversation.route!() } : {}),
      ...(conversation.watchRoute ? { watchRoute: (listener: (route: Record<string, unknown>) => void) => conversation.watchRoute!(listener) } : {}),
    };
  }

  private async finish(conversation: Conversation, reply: Reply, request: BotRequest, ctx?: CommandContext): Promise<void> {
    let messageIds: string[] | undefined;
    try {
      const receipt = await conversation.finish(reply);
      if (reply.jobId && receipt && Array.isArray(receipt.messageIds) && receipt.messageIds.length > 0) messageIds = receipt.messageIds;
    } catch (error) {
      // The adapter could not deliver; there is no second channel to the user, so the log is the last resort.
      this.log.error('conversation.finish failed; the reply was not delivered', {
        requestId: request?.id, jobId: reply.jobId, code: reply.error?.code, error: String((error as Error)?.stack ?? error),
      });
    }
    // a reply about a job the command did not run (a status, a cancel): its messages are still that job's
    const aboutAnother = reply.jobId !== undefined && !ctx?.answering.has(reply.jobId);
    if (ctx) await this.answered(ctx, reply, messageIds);
    if (aboutAnother && reply.jobId && messageIds) {
      await this.store.setJobMessages(reply.jobId, messageIds, this.clock.now())
        .catch((error: unknown) => this.log.warn('the reply\'s message ids could not be kept', { jobId: reply.jobId, error: String(error) }));
    }
  }

  /**
   * The reply of a command went out (or the platform refused it: a second try would fare no better): its jobs are
   * marked answered in the store, then released from the queue, so no front answers them again. A job another front
   * answers (`answeredElsewhere`) is only released: that front marks it.
   */
  private async answered(ctx: CommandContext, reply: Reply, messageIds?: string[]): Promise<void> {
    const now = this.clock.now();
    for (const jobId of ctx.answering) {
      if (!(reply.answeredElsewhere && reply.jobId === jobId)) {
        try {
          await this.store.markAnswered(jobId, now, jobId === reply.jobId ? messageIds : undefined);
        } catch (error) {
          this.log.warn('the job could not be marked answered; the queue\'s mark keeps other fronts from answering it again', { jobId, error: String(error) });
        }
      }
      this.core.release?.(jobId);
    }
    ctx.answering.clear();
  }
}

/** Why a job settled as failed or cancelled: the error its result holds, else `recordedFailure`. */
async function failureOf(job: JobRecord, result: Promise<unknown>): Promise<PictalkError> {
  try {
    await result;
  } catch (error) {
    if (isPictalkError(error)) return error;
  }
  return recordedFailure(job);
}

/** A settled job's failure rebuilt from the code its record keeps. */
const recordedFailure = (job: JobRecord): PictalkError =>
  new PictalkError((job.errorCode ?? 'inference.failed') as ErrorCode, `The ${job.kind} job ${job.state === 'cancelled' ? 'was cancelled' : 'failed'}`);

/**
 * A request standing for a job's requester when the job is answered without one (after a restart, or by another
 * front): the job's own ids, actor and channel age restriction.
 */
function requestFor(job: JobRecord): BotRequest {
  return {
    id: job.requestId, channelId: job.channelId, receivedAt: job.createdAt,
    actor: { platform: job.platform, userId: job.requesterId, spaceId: job.spaceId, roleIds: [], platformModerator: false },
    command: job.kind === 'imagine' ? { name: 'reroll', jobId: job.id } : { name: 'cancel', jobId: job.id },
    ageRestricted: job.settings.ageRestricted === true,
  };
}

/** The request's own shape: adapters are typed, but a malformed request must become a reply, not a crash. */
function checkRequest(request: BotRequest): void {
  if (typeof request !== 'object' || request === null) throw new PictalkError('input.invalid', `Expected a request, got ${describe(request)}`);
  if (typeof request.id !== 'string' || request.id.length === 0) {
    throw new PictalkError('input.invalid', `Expected \`request.id\` to be a non-empty string, got ${describe(request.id)}`);
  }
  const actor = request.actor;
  if (typeof actor !== 'object' || actor === null || typeof actor.userId !== 'string' || typeof actor.spaceId !== 'string' || !Array.isArray(actor.roleIds)) {
    throw new PictalkError('input.invalid', 'Expected `request.actor` with userId, spaceId and roleIds');
  }
  if (typeof request.command !== 'object' || request.command === null) {
    throw new PictalkError('input.invalid', `Expected \`request.command\`, got ${describe(request.command)}`);
  }
}
