/**
 * `/imagine` and the reroll and Vary buttons: validate, reserve quota for `count` images, run text-to-image (or
 * image-to-image from an uploaded picture or an earlier image) on the core, then describe each image with the
 * captioner for its alt text (the paper's unified loop: caption(generate(prompt))).
 */
import { createHash } from 'node:crypto';
import { formatBytes } from '../../common/format.js';
import type { GeneratedImage, ImagineRequest, ImagineResult, ImagineSettings } from '../../inference/types.js';
import { keepRouteCurrent, ownerOf, routeOf, type CommandContext } from '../context.js';
import { followJob, newJobId, runJob, type ActiveJob } from '../jobs.js';
import type { JobHandle } from '../ports.js';
import type { JobRecord } from '../store.js';
import { effectiveLimit, utcDay } from '../policy/quota.policy.js';
import { describeSettings } from '../replies.js';
import type { Attachment, ImagineOptions, Reply, ReplyButton, ReplyImage } from '../types.js';
import { answeredElsewhere, findJob, refundWhenStoreIsBack, settleFailure, settleOnce, settleSuccess, withRoute } from './job-lifecycle.js';
import { flaggedImagesBecome } from './safety.command.js';
import { validateImagineOptions, type PictureSource, type ValidImagineOptions } from './imagine.options.js';
import { RecentPictures } from '../recent.pictures.js';
import { PictalkError, describe, isPictalkError } from '../../common/errors.js';
import { DEFAULT_STRENGTH, applyImagineSettings, resolveSettings } from '../user.settings.js';

/** Alt text is read aloud by screen readers and capped by platforms (Discord: 1024); keep it well under. */
const MAX_ALT_CHARS = 1000;

/** Image-to-image's starting picture: its bytes and where they came from. */
export interface StartPicture { bytes: Buffer; source: PictureSource }

export async function imagineCommand(ctx: CommandContext, options: ImagineOptions, parentJobId?: string, start?: StartPicture): Promise<Reply> {
  const { actor } = ctx.request;
  const blocklist = (await ctx.store.listBlockPatterns(actor.spaceId)).map((entry) => entry.pattern);
  // settings: explicit options, then the user's defaults, then the server's; a typed value over the server's maximum is refused
  const settings = await resolveSettings(ctx.store, actor.spaceId, actor.userId);
  const applied = applyImagineSettings(options, settings);
  const valid = validateImagineOptions(applied.options, ctx.config.maxPromptChars, blocklist);
  // image-to-image: the picture (an upload is fetched and checked before anything is reserved) and its strength,
  // the command's, else the user's or server's setting, else the default
  const picture = start ?? (options.image !== undefined ? await fetchStartPicture(ctx, options.image) : undefined);
  if (!picture && valid.strength !== undefined) {
    throw new PictalkError('input.invalid', `Expected an \`image\` to start from with \`strength\` ${valid.strength}, got none`, { option: 'image' });
  }
  if (picture) {
    valid.strength ??= settings.strength ?? DEFAULT_STRENGTH;
    valid.source = picture.source;
  }
  // The seed is drawn here, not in the core, so the jobs table can always reproduce the request.
  const withSeed: ValidImagineOptions = { ...valid, seed: valid.seed ?? ctx.randomSeed() };

  // accept: reserve quota and record the job in one transaction
  const jobId = newJobId();
  const now = ctx.clock.now();
  const { limit } = await effectiveLimit(ctx.store, ctx.config, actor, 'imagine');
  await ctx.store.acceptJob(
    {
      id: jobId, requestId: ctx.request.id, platform: actor.platform, requesterId: actor.userId, spaceId: actor.spaceId,
      channelId: ctx.request.channelId, kind: 'imagine', createdAt: now,
      // whether the channel is age-restricted is kept for a front that finishes the job after a restart (spoilers)
      settings: { options: withSeed, ...routeOf(ctx), ...(ctx.request.ageRestricted ? { ageRestricted: true } : {}) },
      ...(parentJobId ? { parentJobId } : {}),
    },
    { spaceId: actor.spaceId, userId: actor.userId, kind: 'imagine', day: utcDay(now), units: withSeed.count, limit },
  );
  keepRouteCurrent(ctx, jobId);

  const request = toRequest(withSeed, ctx.config.imageUpscale, picture?.bytes);
  if (request.steps === undefined && settings.maxSteps !== undefined) request.maxSteps = settings.maxSteps;
  const reply = await completeImagine(ctx, jobId, withSeed, (active) => runJob(ctx.core, ownerOf(ctx), { kind: 'imagine', request }, {
    statusJobId: jobId, coreJobId: jobId, timeoutMs: ctx.config.jobTimeoutMs.imagine,
    onStatus: (status) => ctx.conversation.status(status), active,
  }));
  return applied.notes.length > 0 && !reply.error ? { ...reply, text: [reply.text, ...applied.notes].join('\n') } : reply;
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

/**
 * An imagine job the last run settled but never answered (the single process stopped while its reply went out): its
 * pictures drawn again from the job's stored settings (the pipeline is seeded, so they are the same pictures), and the
 * reply built as the first time; nothing is settled again (`ctx.settledBefore`). A job drawn by another model than
 * the one running now gets an error instead of different pictures.
 */
export async function redrawImagine(ctx: CommandContext, job: JobRecord): Promise<Reply> {
  const { options, result, model } = job.settings as { options?: ValidImagineOptions; result?: ImagineSettings; model?: { name: string; hash: string } };
  if (!options || !result) throw new PictalkError('inference.failed', `Job \`${job.id}\` keeps no settings to draw it again`, { jobId: job.id });
  const start = options.source ? await pictureOf(ctx, options.source, 1) : undefined;
  return completeImagine(ctx, job.id, options, async (active) => {
    const redrawn = await runJob(ctx.core, ownerOf(ctx), { kind: 'imagine', request: redrawRequest(ctx, options, result, start) }, {
      statusJobId: job.id, coreJobId: `${job.id}.again.${newJobId()}`, timeoutMs: ctx.config.jobTimeoutMs.imagine,
      onStatus: (status) => ctx.conversation.status(status), active,
    });
    if (model && redrawn.model.hash !== model.hash) {
      throw new PictalkError('inference.failed', `Job \`${job.id}\` was drawn by another model (${model.name}) than the one running now, so it cannot be drawn again`, { jobId: job.id });
    }
    return redrawn;
  });
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
    // safety: images the model folder's checker flagged are withheld and not charged, or in spoiler mode and an
    // age-restricted channel sent as spoilers
    const flaggedBecome = result.images.some((image) => image.nsfw) ? await flaggedImagesBecome(ctx, ctx.request.ageRestricted === true) : 'withheld';
    const shown = result.images.flatMap((image, index) => (image.nsfw && flaggedBecome === 'withheld' ? [] : [{ image, index }]));
    const withheld = result.images.length - shown.length;
    if (shown.length === 0) return await allWithheld(ctx, jobId, withSeed, result);
    // describe: alt text from the captioner, the prompt when it fails
    const altTexts = await describeImages(ctx, jobId, shown.map(({ image }) => image), withSeed.prompt);
    // charged once the reply is ready: a front that stops before this leaves the job for another front to finish
    const charged = await settleSuccess(ctx, jobId, {
      options: withSeed, result: result.settings, model: result.model, ...(withheld > 0 ? { withheld } : {}),
      ...ageRestricted(ctx),
    },
      withheld > 0 ? { units: shown.length, note: `${withheld} of ${result.images.length} images withheld by the safety checker` } : undefined);
    if (!charged) return answeredElsewhere(ctx, jobId);
    const images: ReplyImage[] = shown.map(({ image, index }, k) => ({
      name: `pictalk-${jobId}-${index + 1}.png`, png: image.png, altText: altTexts[k] ?? withSeed.prompt, seed: image.seed,
      ...(image.nsfw ? { spoiler: true } : {}),
    }));
    // kept for a while, so Vary (and a reroll of a variation) starts from them without redrawing
    for (const { image, index } of shown) ctx.pictures?.set(RecentPictures.generated(jobId, index + 1), image.png);
    const vary: ReplyButton[] = shown.map(({ index }) => ({
      action: 'vary', jobId, index: index + 1, label: result.images.length > 1 ? `Vary ${index + 1}` : 'Vary', style: 'secondary',
    }));
    const withheldNote = withheld > 0
      ? `\n${withheld} of ${result.images.length} images ${withheld === 1 ? 'was' : 'were'} withheld by the safety checker; the quota for ${withheld === 1 ? 'it' : 'them'} was refunded.`
      : '';
    return {
      text: describeSettings(result.settings, shown.map(({ image }) => image.seed)) + withheldNote,
      images,
      buttons: [
        { action: 'reroll', jobId, label: 'Reroll', style: 'primary' },
        ...vary,
        { action: 'delete', jobId, label: 'Delete', style: 'danger' },
      ],
      jobId,
    };
  } catch (error) {
    // the store could not be reached to settle it: the requester is told so, and the job refunded once it is back
    refundWhenStoreIsBack(ctx, jobId, error);
    throw error;
  } finally {
    // settled (or failed): released once the reply is out, so a front that stops before leaves the job to another
    ctx.answering.add(jobId);
  }
}

/** Whether the job's channel is age-restricted, as its request says (a job resumed after a restart: as its record says). */
const ageRestricted = (ctx: CommandContext): { ageRestricted?: true } => (ctx.request.ageRestricted === true ? { ageRestricted: true } : {});

/** Every image was withheld by the safety checker: nothing is posted and the whole reservation is refunded. */
async function allWithheld(ctx: CommandContext, jobId: string, withSeed: ValidImagineOptions, result: ImagineResult): Promise<Reply> {
  const now = ctx.clock.now();
  if (!await settleOnce(ctx, jobId, 'refunded', now)) return answeredElsewhere(ctx, jobId);
  const n = result.images.length;
  const settings = { options: withSeed, result: result.settings, model: result.model, withheld: n, ...ageRestricted(ctx) };
  await ctx.store.updateJob(jobId, { state: 'succeeded', settings: withRoute(ctx, settings) }, now);
  return {
    text: `${n === 1 ? 'The image was' : `All ${n} images were`} withheld by the safety checker, so nothing was posted.`
      + ` Your quota for ${n === 1 ? 'it' : 'them'} was refunded.`,
    buttons: [{ action: 'reroll', jobId, label: 'Reroll', style: 'primary' }],
    jobId,
  };
}

/** The reroll button: the stored settings of a job of this space, with a new seed, charged to whoever pressed it. */
export async function rerollCommand(ctx: CommandContext, jobId: string): Promise<Reply> {
  const job = await findJob(ctx, jobId);
  const stored = job.settings.options as ValidImagineOptions | undefined;
  if (job.kind !== 'imagine' || !stored) {
    throw new PictalkError('input.invalid', `Job \`${jobId}\` is not an image job, so it cannot be rerolled`, { jobId });
  }
  const { seed: _previous, source, ...options } = stored;
  // a reroll of image-to-image starts from the same picture, at the same strength
  const start = source ? { bytes: await pictureOf(ctx, source), source } : undefined;
  return imagineCommand(ctx, options, job.id, start);
}

/**
 * The Vary button: image-to-image from image `index` of a finished job of this space, with its prompt and settings,
 * a new seed and the strength of the presser's settings; charged like a reroll (count images, the parent recorded).
 */
export async function varyCommand(ctx: CommandContext, jobId: string, index = 1): Promise<Reply> {
  const job = await findJob(ctx, jobId);
  const stored = job.settings.options as ValidImagineOptions | undefined;
  if (job.kind !== 'imagine' || !stored) {
    throw new PictalkError('input.invalid', `Job \`${jobId}\` is not an image job, so it has no picture to vary`, { jobId });
  }
  if (job.state !== 'succeeded') {
    throw new PictalkError('input.invalid', `Job \`${jobId}\` has no finished pictures to vary (it is ${job.state})`, { jobId });
  }
  if (!Number.isInteger(index) || index < 1 || index > stored.count) {
    throw new PictalkError('input.invalid',
      `Expected the image to vary to be an integer from 1 to ${stored.count} (the images of job \`${jobId}\`), got ${describe(index)}`, { jobId });
  }
  const bytes = await sourcePicture(ctx, job, index);
  const { seed: _seed, strength: _strength, source: _source, ...options } = stored;
  return imagineCommand(ctx, options, job.id, { bytes, source: { kind: 'job', jobId: job.id, index } });
}

/** Most redraws behind one picture (a variation of a variation of ...), so a long chain cannot run away. */
const MAX_REDRAW_DEPTH = 8;

/** The bytes of a starting picture: a recent upload, or an earlier job's image. */
async function pictureOf(ctx: CommandContext, source: PictureSource, depth = 0): Promise<Buffer> {
  if (source.kind === 'job') return sourcePicture(ctx, await findJob(ctx, source.jobId), source.index, depth);
  const kept = ctx.pictures?.get(RecentPictures.upload(source.sha256));
  if (!kept) {
    throw new PictalkError('input.invalid',
      `The picture this job started from (\`${source.name}\`) is no longer kept here; send /imagine with the image again`);
  }
  return kept;
}

/**
 * Image `index` of a finished imagine job: from the recent pictures, else redrawn from the job's stored settings.
 * The pipeline is seeded, so the redraw gives the image again; the whole batch is redrawn (the same seed and count),
 * since a batch's rows are not bit-for-bit the rows of smaller batches (the builtin's int8 UNet quantizes its
 * activations per run). It is not charged. A job drawn by another model, or an image the safety checker flags, is
 * not redrawn.
 */
async function sourcePicture(ctx: CommandContext, job: JobRecord, index: number, depth = 0): Promise<Buffer> {
  const key = RecentPictures.generated(job.id, index);
  const kept = ctx.pictures?.get(key);
  if (kept) return kept;
  const { options, result, model } = job.settings as { options?: ValidImagineOptions; result?: ImagineSettings; model?: { name: string; hash: string } };
  if (!options || !result || job.state !== 'succeeded') {
    throw new PictalkError('input.invalid', `Job \`${job.id}\` has no finished picture ${index} to start from`, { jobId: job.id });
  }
  if (depth >= MAX_REDRAW_DEPTH) {
    throw new PictalkError('input.invalid',
      `Job \`${job.id}\`'s picture is more than ${MAX_REDRAW_DEPTH} variations deep and no longer kept here; save it and send /imagine with it`);
  }
  const start = options.source ? await pictureOf(ctx, options.source, depth + 1) : undefined;
  ctx.conversation.status({ state: 'running', jobId: job.id, stage: 'redraw', step: 0, total: 1 });
  const redrawn = await runJob(ctx.core, ownerOf(ctx), { kind: 'imagine', request: redrawRequest(ctx, options, result, start) }, {
    statusJobId: job.id, coreJobId: `${job.id}.redraw${index}.${newJobId()}`, timeoutMs: ctx.config.jobTimeoutMs.imagine,
  });
  if (model && redrawn.model.hash !== model.hash) {
    throw new PictalkError('input.invalid',
      `Job \`${job.id}\` was drawn by another model (${model.name}) than the one running now, so its picture cannot be redrawn to start from`, { jobId: job.id });
  }
  const image = redrawn.images[index - 1];
  if (!image) throw new PictalkError('inference.failed', `The redraw of job \`${job.id}\` gave ${redrawn.images.length} images, not ${index}`, { jobId: job.id });
  if (image.nsfw) throw new PictalkError('input.invalid', `Picture ${index} of job \`${job.id}\` was withheld by the safety checker, so it cannot be varied`, { jobId: job.id });
  ctx.pictures?.set(key, image.png);
  return image.png;
}

/** The request that draws a finished job's pictures again: its settings as drawn (the seed among them). */
function redrawRequest(ctx: CommandContext, options: ValidImagineOptions, result: ImagineSettings, start: Buffer | undefined): ImagineRequest {
  return {
    prompt: result.prompt, negativePrompt: result.negativePrompt, seed: result.seed, steps: result.steps,
    guidance: result.guidance, width: result.width, height: result.height, scheduler: result.scheduler, count: result.count, candidates: result.candidates,
    ...(ctx.config.imageUpscale !== undefined ? { upscale: ctx.config.imageUpscale } : {}),
    ...(start ? { image: start, strength: result.strength ?? options.strength ?? DEFAULT_STRENGTH } : {}),
  };
}

/** An uploaded starting picture: downloaded within the attachment limit and checked to be a picture. */
async function fetchStartPicture(ctx: CommandContext, attachment: Attachment): Promise<StartPicture> {
  if (typeof attachment !== 'object' || attachment === null || typeof attachment.fetch !== 'function') {
    throw new PictalkError('input.invalid', `Expected \`image\` to be an image attachment, got ${describe(attachment)}`, { option: 'image' });
  }
  const name = String(attachment.name ?? 'image');
  const maxBytes = ctx.config.maxAttachmentBytes;
  const tooLarge = (size: number): PictalkError => new PictalkError('input.too_large',
    `\`${name}\` is ${formatBytes(size)}; the limit for a starting picture is ${formatBytes(maxBytes)}`, { size, limit: maxBytes });
  if (typeof attachment.size === 'number' && attachment.size > maxBytes) throw tooLarge(attachment.size);
  let bytes: Buffer;
  try {
    bytes = await attachment.fetch(maxBytes);
  } catch (error) {
    if (isPictalkError(error)) throw error;
    throw new PictalkError('input.invalid', `Could not download \`${name}\`: ${(error as Error)?.message ?? String(error)}`, {}, { cause: error });
  }
  if (bytes.length > maxBytes) throw tooLarge(bytes.length);
  if (bytes.length === 0) throw new PictalkError('input.invalid', `\`${name}\` is empty, so image-to-image has no picture to start from`);
  if (!isPicture(bytes)) {
    throw new PictalkError('input.unsupported', `\`${name}\` is not a PNG, JPEG, WebP or GIF picture, so image-to-image cannot start from it`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  ctx.pictures?.set(RecentPictures.upload(sha256), bytes);
  return { bytes, source: { kind: 'upload', sha256, name } };
}

/**
 * PNG, JPEG, GIF or WebP by their magic bytes (the codec in inference/ decodes and checks them fully; this only
 * refuses other files before quota is reserved, without loading the image library here).
 */
function isPicture(bytes: Buffer): boolean {
  const starts = (magic: number[], at = 0): boolean => magic.every((byte, i) => bytes[at + i] === byte);
  return starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) || starts([0xff, 0xd8, 0xff])
    || starts([0x47, 0x49, 0x46, 0x38]) || (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8));
}

function toRequest(options: ValidImagineOptions, upscale: number | undefined, image?: Buffer): ImagineRequest {
  const request: ImagineRequest = { prompt: options.prompt, count: options.count };
  if (image) {
    request.image = image;
    request.strength = options.strength ?? DEFAULT_STRENGTH;
  }

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
  // a picture the captioner cannot describe reliably (a real model's photograph for the builtin captioner): no
  // guessed alt text, the prompt instead (empty text falls back to it)
  return result.inDomain === false ? '' : result.caption;
}
