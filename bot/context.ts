/** What every command gets: the request, the adapter's conversation, and the bot's parts. */
import type { JobOwner } from '../inference/types.js';
import type { BotConfig } from './config.js';
import type { ActiveJobs } from './jobs.js';
import type { AltTextCaptioner, Clock, InferencePort, Logger } from './ports.js';
import type { BotStore } from './store.js';
import type { RecentPictures } from './recent.pictures.js';
import type { BotRequest, Conversation } from './types.js';

export interface CommandContext {
  request: BotRequest;
  conversation: Conversation;
  store: BotStore;
  core: InferencePort;
  config: BotConfig;
  clock: Clock;
  log: Logger;
  jobs: ActiveJobs;
  /** Alt text for generated images; undefined: caption jobs on the core (the unified loop). */
  captioner?: AltTextCaptioner;
  /** The text-to-image model folder has a safety checker (true), has none (false), or this process cannot tell. */
  safetyChecker?: boolean;
  randomSeed: () => number;
  /** Recent generated and uploaded pictures, where image-to-image (Vary, a reroll of one) finds its start. */
  pictures?: RecentPictures;
  /**
   * The jobs this command follows, answered by its reply: once the reply has been handed to the platform, `Bot` marks
   * them answered in the store and releases them from the queue. Until then a cluster front keeps its claim on each, so
   * a front that stops while it sends the reply leaves the job to another front, which sends the reply again.
   */
  answering: Set<string>;
  /**
   * A front that stopped after settling this job and before its reply went out: the job is answered from its result
   * without being settled again (quota, job state); the settlement that front made stands.
   */
  settledBefore?: boolean;
}

export const ownerOf = (ctx: CommandContext): JobOwner => ({ userId: ctx.request.actor.userId, spaceId: ctx.request.actor.spaceId });

/** Keep the job record's route current when the conversation's changes (e.g. its status message was posted). */
export function keepRouteCurrent(ctx: CommandContext, jobId: string): void {
  ctx.conversation.watchRoute?.((route) => {
    ctx.store.setJobRoute(jobId, route).catch((error: unknown) =>
      ctx.log.warn('the job\'s route could not be updated; a front taking it over posts a new message', { jobId, error: String(error) }));
  });
}

/** The conversation's way back to the requester, kept in the job record: a restarted front answers through it. */
export const routeOf = (ctx: CommandContext): { route?: Record<string, unknown> } => {
  try {
    const route = ctx.conversation.route?.();
    return route ? { route } : {};
  } catch (error) {
    ctx.log.warn('the conversation could not say how to reach the requester again', { error: String(error) });
    return {};
  }
};
