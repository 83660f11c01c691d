/**
 * `/caption` (and Slack auto-caption): check the attachment's declared type and size, reserve one caption, fetch with
 * a byte cap, caption on the core, then speak the caption as a voice message. A voice failure still returns the
 * caption, with a note; decoding errors come from the pipeline as `input.unsupported` / `input.invalid`.
 * A picture the captioner cannot describe reliably (`inDomain: false`: a photograph or a screenshot for the builtin
 * captioner) is declined: no caption asserted and no voice, the reservation refunded; `/caption` explains and offers
 * the guess, Slack's auto-captioning stays silent.
 */
import { formatBytes } from '../../common/format.js';
import { PictalkError, describe, isPictalkError } from '../../common/errors.js';
import type { CaptionResult, SpeechResult } from '../../inference/types.js';
import { keepRouteCurrent, ownerOf, routeOf, type CommandContext } from '../context.js';
import { followJob, newJobId, runJob, type ActiveJob } from '../jobs.js';
import type { JobHandle } from '../ports.js';
import type { JobRecord } from '../store.js';
import { effectiveLimit, utcDay } from '../policy/quota.policy.js';
import type { Attachment, Reply, ReplyVoice } from '../types.js';
import { answeredElsewhere, refundWhenStoreIsBack, settleFailure, settleOnce, settleSuccess, withRoute } from './job-lifecycle.js';
import { resolveSettings } from '../user.settings.js';

const SUPPORTED_TYPES = new Set(['image/png', 'image/jpeg', 'image/jpg', 'image/webp', 'image/gif']);
const SUPPORTED_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'webp', 'gif']);
const SUPPORTED_TEXT = 'PNG, JPEG, WebP or GIF images';


/** What the platform declared, checked before anything is reserved or downloaded. */
export function checkAttachment(attachment: Attachment, maxBytes: number): void {
  if (typeof attachment !== 'object' || attachment === null || typeof attachment.fetch !== 'function') {
    throw new PictalkError('input.invalid', `Expected an image attachment, got ${describe(attachment)}`);
  }
  const name = String(attachment.name ?? 'attachment');
  const type = attachment.contentType?.split(';')[0]?.trim().toLowerCase();
  if (type) {
    if (!type.startsWith('image/')) {
      throw new PictalkError('input.unsupported', `\`${name}\` is not an image (${type}); I can caption ${SUPPORTED_TEXT}`, { contentType: type });
    }
    if (!SUPPORTED_TYPES.has(type)) {
      throw new PictalkError('input.unsupported', `\`${name}\` is a ${type} image; I can caption ${SUPPORTED_TEXT}`, { contentType: type });
    }
  } else {
    const extension = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
    if (extension !== undefined && !SUPPORTED_EXTENSIONS.has(extension)) {
      throw new PictalkError('input.unsupported', `\`${name}\` does not look like an image (.${extension}); I can caption ${SUPPORTED_TEXT}`);
    }
  }
  if (typeof attachment.size === 'number' && attachment.size > maxBytes) {
    throw new PictalkError('input.too_large', `\`${name}\` is ${formatBytes(attachment.size)}; the limit is ${formatBytes(maxBytes)}`,
      { size: attachment.size, limit: maxBytes });
  }
}

export async function captionCommand(ctx: CommandContext, attachment: Attachment, voiceOption?: boolean, auto = false): Promise<Reply> {
  const { actor } = ctx.request;
  const maxBytes = ctx.config.maxAttachmentBytes;
  checkAttachment(attachment, maxBytes);
  // the voice message: the command's option, else the user's (or server's) `voice` setting, else on
  const voice = voiceOption ?? (await resolveSettings(ctx.store, actor.spaceId, actor.userId)).voice ?? true;

  // accept: one caption reserved
  const jobId = newJobId();
  const now = ctx.clock.now();
  const { limit } = await effectiveLimit(ctx.store, ctx.config, actor, 'caption');
  await ctx.store.acceptJob(
    {
      id: jobId, requestId: ctx.request.id, platform: actor.platform, requesterId: actor.userId, spaceId: actor.spaceId,
      channelId: ctx.request.channelId, kind: 'caption', createdAt: now,
      settings: { name: attachment.name, size: attachment.size, contentType: attachment.contentType ?? null, voice, ...(auto ? { auto } : {}), ...routeOf(ctx) },
    },
    { spaceId: actor.spaceId, userId: actor.userId, kind: 'caption', day: utcDay(now), units: 1, limit },
  );
  keepRouteCurrent(ctx, jobId);

  // fetch and caption
  return completeCaption(ctx, jobId, { name: attachment.name, size: attachment.size, voice, auto }, async (active) => {
    ctx.conversation.status({ state: 'running', jobId, stage: 'download', step: 0, total: 1 });
    const bytes = await fetchCapped(attachment, maxBytes);
    if (active.cancelled) throw new PictalkError('job.cancelled', `Job ${jobId} was cancelled`);
    return runJob(ctx.core, ownerOf(ctx), { kind: 'caption', request: { image: bytes } }, {
      statusJobId: jobId, coreJobId: jobId, timeoutMs: ctx.config.jobTimeoutMs.caption,
      onStatus: (status) => ctx.conversation.status(status), active,
    });
  });
}

/** A caption job a previous front process accepted and the cluster still runs (or has finished): follow it again. */
export async function resumeCaption(ctx: CommandContext, job: JobRecord, handle: JobHandle): Promise<Reply> {
  const { name, size, voice, auto } = job.settings as { name?: string; size?: number; voice?: boolean; auto?: boolean };
  return completeCaption(ctx, job.id, { name: name ?? 'image', size: size ?? 0, voice: voice !== false, auto: auto === true }, (active) =>
    followJob(handle, 'caption', { statusJobId: job.id, onStatus: (status) => ctx.conversation.status(status), active }));
}

/**
 * A caption job the last run settled but never answered (the single process stopped while its reply went out): the
 * reply built again from the caption its record keeps (a declined one from its guess), the voice spoken again; nothing
 * is settled again (`ctx.settledBefore`).
 */
export async function recaption(ctx: CommandContext, job: JobRecord): Promise<Reply> {
  const { name, size, voice, auto, caption, declined, guess, domainScore } = job.settings as {
    name?: string; size?: number; voice?: boolean; auto?: boolean; caption?: string; declined?: boolean; guess?: string; domainScore?: number | null;
  };
  const text = declined ? guess : caption;
  if (typeof text !== 'string') throw new PictalkError('inference.failed', `Job \`${job.id}\` keeps no caption to send again`, { jobId: job.id });
  const kept: CaptionResult = {
    kind: 'caption', caption: text, tokens: [], score: 0, timingsMs: {},
    ...(declined ? { inDomain: false } : {}), ...(typeof domainScore === 'number' ? { domainScore } : {}),
  };
  return completeCaption(ctx, job.id, { name: name ?? 'image', size: size ?? 0, voice: voice !== false, auto: auto === true }, async () => kept);
}

/** Caption (or follow the caption job), settle, then speak the caption as a voice message when asked. */
async function completeCaption(
  ctx: CommandContext, jobId: string, about: { name: string; size: number; voice: boolean; auto: boolean }, run: (active: ActiveJob) => Promise<CaptionResult>,
): Promise<Reply> {
  try {
    const { actor } = ctx.request;
    const { voice } = about;
    const active = ctx.jobs.add({ id: jobId, kind: 'caption', requesterId: actor.userId, spaceId: actor.spaceId });
    let caption: CaptionResult;
    try {
      caption = await run(active);
    } catch (error) {
      return await settleFailure(ctx, jobId, error);
    } finally {
      ctx.jobs.remove(jobId);
    }
    if (caption.inDomain === false) return await declineCaption(ctx, jobId, about, caption);
    const reply: Reply = { text: caption.caption, jobId, buttons: [{ action: 'delete', jobId, label: 'Delete', style: 'danger' }] };
    // speak: the caption as a voice message; its failure costs the user nothing but the voice
    if (voice) {
      try {
        ctx.conversation.status({ state: 'running', jobId, stage: 'voice', step: 0, total: 1 });
        const speech: SpeechResult = await runJob(ctx.core, ownerOf(ctx), { kind: 'speak', request: { text: caption.caption } }, {
          // unique per attempt: a front that takes over a stopped front's job speaks the caption again
          statusJobId: jobId, coreJobId: `${jobId}.voice.${newJobId()}`, timeoutMs: ctx.config.jobTimeoutMs.speak,
        });
        const voiceMessage: ReplyVoice = {
          name: `pictalk-${jobId}.ogg`, ogg: speech.ogg, durationSecs: speech.durationSecs, waveform: speech.waveform,
        };
        reply.voice = voiceMessage;
      } catch (error) {
        ctx.log.warn('voice message failed; sending the caption alone', { jobId, error: String(error) });
        const why = isPictalkError(error) && error.code === 'job.timeout' ? 'it took too long' : 'the voice engine failed';
        reply.text = `${caption.caption}\n(No voice message this time: ${why}.)`;
      }
    }
    // charged once the reply is ready: a front that stops before this leaves the job for another front to finish
    const settings = { name: about.name, size: about.size, voice, caption: caption.caption, ...(about.auto ? { auto: true } : {}) };
    if (!await settleSuccess(ctx, jobId, settings)) return answeredElsewhere(ctx, jobId);
    return reply;
  } catch (error) {
    // the store could not be reached to settle it: the requester is told so, and the job refunded once it is back
    refundWhenStoreIsBack(ctx, jobId, error);
    throw error;
  } finally {
    // settled (or failed): released once the reply is out, so a front that stops before leaves the job to another
    ctx.answering.add(jobId);
  }
}

/**
 * What `/caption` says about a picture the captioner cannot describe reliably: why, that it costs nothing, and the
 * guess for whoever wants it, marked as one.
 */
export function declinedText(guess: string): string {
  return 'I can\'t describe this picture reliably: it doesn\'t look like the pictures my captioner was trained on '
    + '(drawn shapes and emoji on plain backgrounds), so a caption would likely be wrong. This one is not charged.'
    + `${guess ? `\nMy best guess, probably wrong: "${guess}"` : ''}`;
}

/**
 * A declined caption: its reservation refunded (a bot does not charge for a caption it refuses to give), the job
 * succeeded with `declined` and the guess in its settings, no voice message; auto-captioning (nobody asked) is silent.
 */
async function declineCaption(ctx: CommandContext, jobId: string, about: { name: string; size: number; voice: boolean; auto: boolean }, caption: CaptionResult): Promise<Reply> {
  const now = ctx.clock.now();
  if (!await settleOnce(ctx, jobId, 'refunded', now)) return answeredElsewhere(ctx, jobId);
  await ctx.store.updateJob(jobId, {
    state: 'succeeded',
    settings: withRoute(ctx, {
      name: about.name, size: about.size, voice: about.voice, declined: true, guess: caption.caption, domainScore: caption.domainScore ?? null,
      ...(about.auto ? { auto: true } : {}),
    }),
  }, now);
  if (about.auto) return { text: '', silent: true, jobId };
  return { text: declinedText(caption.caption), jobId, buttons: [{ action: 'delete', jobId, label: 'Delete', style: 'danger' }] };
}

/** The adapter's fetch enforces the cap while streaming; check again, since a platform can lie about sizes. */
async function fetchCapped(attachment: Attachment, maxBytes: number): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await attachment.fetch(maxBytes);
  } catch (error) {
    if (isPictalkError(error)) throw error;
    throw new PictalkError('input.invalid', `Could not download \`${attachment.name}\`: ${(error as Error)?.message ?? String(error)}`,
      {}, { cause: error });
  }
  if (bytes.length > maxBytes) {
    throw new PictalkError('input.too_large', `\`${attachment.name}\` is ${formatBytes(bytes.length)}; the limit is ${formatBytes(maxBytes)}`,
      { size: bytes.length, limit: maxBytes });
  }
  if (bytes.length === 0) throw new PictalkError('input.invalid', `\`${attachment.name}\` is empty`);
  return bytes;
}
