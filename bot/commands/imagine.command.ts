/**
 * `/imagine` and the reroll button: validate, reserve quota for `count` images, run text-to-image on the core, then
 * describe each image with the captioner for its alt text (the paper's unified loop: caption(generate(prompt))).
 */
import type { GeneratedImage, ImagineRequest, ImagineResult } from '../../inference/types.js';
import { ownerOf, routeOf, type CommandContext } from '../context.js';
import { followJob, newJobId, runJob, type ActiveJob } from '../jobs.js';
import type { JobHandle } from '../ports.js';
import type { JobRecord } from '../store.js';
import { effectiveLimit, utcDay } from '../policy/quota.policy.js';
import { describeSettings } from '../replies.js';
import type { ImagineOptions, Reply, ReplyImage } from '../types.js';
import { findJob, settleFailure, settleSuccess } from './job-lifecycle.js';
import { validateImagineOptions, type ValidImagineOptions } from './imagine.options.js';
import { PictalkError } from '../../common/errors.js';

/** Alt text is read aloud by screen readers and capped by platforms (Discord: 1024); keep it well under. */
const MAX_ALT_CHARS = 1000;

export async function imagineCommand(ctx: CommandContext, options: ImagineOptions, parentJobId?: string): Promise<Reply> {
  const { actor } = ctx.request;
  const blocklist = (await ctx.store.listBlockPatterns(actor.spaceId)).map((entry) => entry.pattern);
  const valid = validateImagineOptions(options, ctx.config.maxPromptChars, blocklist);
  // The seed is drawn here, not in the core, so the jobs table can always reproduce the request.
  const withSeed: ValidImagineOptions = { ...valid, seed: valid.seed ?? ctx.randomSeed() };

  // accept: reserve quota and record the job in one transaction
  const jobId = newJobId();
  const now = ctx.clock.now();
  const { limit } = await effectiveLimit(ctx.store, ctx.config, actor, 'imagine');
  await ctx.store.acceptJob(
    {
      id: jobId, requestId: ctx.request.id, platform: actor.platform, requesterId: actor.userId, spaceId: actor.spaceId,
      channelId: ctx.request.channelId, kind: 'imagine', settings: { options: withSeed, ...routeOf(ctx) }, createdAt: now,
      ...(parentJobId ? { parentJobId } : {}),
    },
    { spaceId: actor.spaceId, userId: actor.userId, kind: 'imagine', day: utcDay(now), units: withSeed.count, limit },
  );

  return completeImagine(ctx, jobId, withSeed, (active) => runJob(ctx.core, ownerOf(ctx), { kind: 'imagine', request: toRequest(withSeed, ctx.config.imageUpscale) }, {
    statusJobId: jobId, coreJobId: jobId, timeoutMs: ctx.config.jobTimeoutMs.imagine,
    onStatus: (status) => ctx.conversation.status(status), active,
  }));
}

/**
 * An imagine job a previous front process accepted and the cluster still runs (or has finished): follow it again,
 * settle it and build its reply, as if this process had submitted it.
 */
export async function resumeImagine(ctx: CommandContext, job: JobRecord, handle: JobHandle): Promise<Reply> {
  const withSeed = job.settings.options as ValidImagineOptions;
  return completeImagine(ctx, job.id, withSeed, (active) => followJob(handle, 'imagine', {
    statusJobId: job.id, onStatus: (status) => ctx.conversation.status(status), active,
  }));
}

/** Run (or follow) the job, settle it, describe its images, and build the reply. */
async function completeImagine(
  ctx: CommandContext, jobId: string, withSeed: ValidImagineOptions, run: (active: ActiveJob) => Promise<ImagineResult>,
): Promise<Reply> {
  try {
    const { actor } = ctx.request;
    const active = ctx.jobs.add({ id: jobId, kind: 'imagine', requesterId: actor.userId, spaceId: actor.spaceId });
    let result: ImagineResult;
    try {
      result = await run(active);
      if (result.images.length === 0) throw new PictalkError('inference.failed', 'The text-to-image pipeline returned no images');
    } catch (error) {
      return await settleFailure(ctx, jobId, error);
    } finally {
      ctx.jobs.remove(jobId);
    }
    // describe: alt text from the captioner, the prompt when it fails
    const altTexts = await describeImages(ctx, jobId, result.images, withSeed.prompt);
    // charged once the reply is ready: a front that stops before this leaves the job for another front to finish
    await settleSuccess(ctx, jobId, { options: withSeed, result: result.settings, model: result.model });
    const images: ReplyImage[] = result.images.map((image, index) => ({
      name: `pictalk-${jobId}-${index + 1}.png`, png: image.png, altText: altTexts[index] ?? withSeed.prompt, seed: image.seed,
    }));
    return {
      text: describeSettings(result.settings, result.images.map((image) => image.seed)),
      images,
      buttons: [
        { action: 'reroll', jobId, label: 'Reroll', style: 'primary' },
        { action: 'delete', jobId, label: 'Delete', style: 'danger' },
      ],
      jobId,
    };
  } finally {
    // settled and answered (or failed): no other front need take this job over
    ctx.core.release?.(jobId);
  }
}

/** The reroll button: the stored settings of a job of this space, with a new seed, charged to whoever pressed it. */
export async function rerollCommand(ctx: CommandContext, jobId: string): Promise<Reply> {
  const job = await findJob(ctx, jobId);
  const stored = job.settings.options as ValidImagineOptions | undefined;
  if (job.kind !== 'imagine' || !stored) {
    throw new PictalkError('input.invalid', `Job \`${jobId}\` is not an image job, so it cannot be rerolled`, { jobId });
  }
  const { seed: _previous, ...options } = stored;
  return imagineCommand(ctx, options, job.id);
}

function toRequest(options: ValidImagineOptions, upscale: number | undefined): ImagineRequest {
  const request: ImagineRequest = { prompt: options.prompt, count: options.count };
  if (options.negative !== undefined) request.negativePrompt = options.negative;
  if (options.seed !== undefined) request.seed = options.seed;
  if (options.steps !== undefined) request.steps = options.steps;
  if (options.guidance !== undefined) request.guidance = options.guidance;
  if (options.scheduler !== undefined) request.scheduler = options.scheduler;
  if (upscale !== undefined) request.upscale = upscale;
  return request;
}

async function describeImages(ctx: CommandContext, jobId: string, images: GeneratedImage[], prompt: string): Promise<string[]> {
  const fallback = prompt.length > MAX_ALT_CHARS ? `${prompt.slice(0, MAX_ALT_CHARS - 1)}…` : prompt;
  const total = images.length;
  let done = 0;
  const report = (): void => ctx.conversation.status({ state: 'running', jobId, stage: 'alt-text', step: done, total });
  report();
  const texts = await Promise.all(images.map(async (image, index) => {
    try {
      const text = (await captionImage(ctx, jobId, image.png, index)).trim();
      return text.length === 0 ? fallback : text.slice(0, MAX_ALT_CHARS);
    } catch (error) {
      ctx.log.warn('alt text caption failed; using the prompt', { jobId, index, error: String(error) });
      return fallback;
    } finally {
      done += 1;
      report();
    }
  }));
  return texts;
}

async function captionImage(ctx: CommandContext, jobId: string, png: Buffer, index: number): Promise<string> {
  const owner = ownerOf(ctx);
  if (ctx.captioner) return ctx.captioner.describe(png, { owner, jobId, index });
  const result = await runJob(ctx.core, owner, { kind: 'caption', request: { image: png } }, {
    // unique per attempt: a front that takes over a stopped front's job describes its images again
    statusJobId: jobId, coreJobId: `${jobId}.alt${index + 1}.${newJobId()}`, timeoutMs: ctx.config.jobTimeoutMs.caption,
  });
  return result.caption;
}
