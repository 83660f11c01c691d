/**
 * Platform-neutral reply text. Errors become friendly, ephemeral replies that keep the stable code in `Reply.error`
 * so adapters (and users reporting a problem) can tell them apart. Error texts never repeat blocked words.
 */
import { PictalkError, isPictalkError, type ErrorCode } from '../common/errors.js';
import type { ImagineSettings } from '../inference/types.js';
import type { QuotaKind, Reply } from './types.js';

const UNITS: Record<QuotaKind, [string, string]> = { imagine: ['image', 'images'], caption: ['caption', 'captions'] };

export const plural = (n: number, kind: QuotaKind): string => `${n} ${UNITS[kind][n === 1 ? 0 : 1]}`;

export function formatDuration(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export interface ErrorContext {
  /** The quota reserved for the request was given back (say so: people want to know they were not charged). */
  refunded?: boolean;
}

function friendlyText(error: PictalkError, context: ErrorContext): string {
  const d = error.details;
  const refund = context.refunded ? ' Your quota was refunded.' : '';
  switch (error.code) {
    case 'quota.exceeded': {
      const kind = (d.kind === 'caption' ? 'caption' : 'imagine') as QuotaKind;
      const used = Number(d.used), limit = Number(d.limit), units = Number(d.units);
      if (limit === 0) return `You have no ${UNITS[kind][1]} allowed in this space; a moderator can change that.`;
      if (used >= limit) return `You've used your ${plural(limit, kind)} for today; it resets at 00:00 UTC.`;
      return `You asked for ${plural(units, kind)} but have ${limit - used} left today; it resets at 00:00 UTC.`;
    }
    case 'rate.limited':
      return `You're sending commands too fast; try again in ${formatDuration(Number(d.retryAfterMs) || 1000)}.`;
    case 'content.blocked':
      return "That prompt uses words this space doesn't allow, so I didn't run it.";
    case 'permission.denied':
      if (typeof d.hint === 'string') return d.hint;
      return `Only moderators can use ${typeof d.command === 'string' ? `\`${d.command}\`` : 'that command'}.`;
    case 'input.invalid':
    case 'input.too_large':
    case 'input.unsupported':
      // These messages are written for people already: what was expected, what came.
      return `${error.message}.`.replace(/\.\.$/, '.') + refund;
    case 'queue.busy':
      // why it is busy, when the queue said: its server away, a restart, this person's own limit, or everyone's line
      if (d.reason === 'redis') return `pictalk is busy right now (its job queue can't be reached); please try again in a moment.${refund}`;
      if (d.closed === true) return `pictalk is restarting and takes no new jobs right now; please try again in a moment.${refund}`;
      if (d.scope === 'user' && typeof d.limit === 'number') {
        return `You already have ${d.limit} job${d.limit === 1 ? '' : 's'} waiting or running, the most one person can have; please try again when one has finished.${refund}`;
      }
      return `pictalk is busy: the queue is full right now; please try again in a minute.${refund}`;
    case 'job.cancelled':
      return `Cancelled.${refund}`;
    case 'job.timeout':
      return `That took too long and was stopped.${refund} Please try again.`;
    case 'inference.failed':
      if (d.restarted === true) return `pictalk restarted before this job finished, so it was lost.${refund} Please send it again.`;
      return `Something went wrong while running the model.${refund} Please try again.`;
    case 'model.invalid':
      return `The model is not set up correctly, so I can't do that now; an operator has to fix it.${refund}`;
    case 'platform.rate_limited':
      return 'The chat platform is slowing us down; please try again shortly.';
    case 'store.unavailable':
      return `pictalk is temporarily unavailable (its database cannot be reached); nothing was done, please try again shortly.${refund}`;
    case 'config.invalid':
      return 'pictalk is misconfigured; an operator has to fix it.';
  }
}

/** Any thrown value as a reply. Unknown errors get a generic text (details go to the log, not to the user). */
export function errorReply(error: unknown, context: ErrorContext = {}): Reply {
  const known: PictalkError = isPictalkError(error)
    ? error
    : new PictalkError('inference.failed', 'unexpected error');
  const code: ErrorCode = known.code;
  const text = isPictalkError(error)
    ? friendlyText(known, context)
    : `Something went wrong on our side; it has been logged.${context.refunded ? ' Your quota was refunded.' : ''}`;
  return { text, ephemeral: true, error: { code, retryable: known.retryable } };
}

/** One line of settings under a generated image: enough to reproduce it. */
export function describeSettings(settings: ImagineSettings, seeds: number[]): string {
  const seedText = seeds.length > 1 ? `seeds ${seeds.join(', ')}` : `seed ${seeds[0] ?? settings.seed}`;
  const parts = [seedText, ...(settings.candidates > 1 ? [`best of ${settings.candidates}`] : []), `${settings.steps} steps`, `guidance ${settings.guidance}`, settings.scheduler, `${settings.width}×${settings.height}`,
    ...(settings.strength !== undefined ? [`from a picture at strength ${settings.strength}`] : [])];
  const negative = settings.negativePrompt ? `\nNegative: ${settings.negativePrompt}` : '';
  return `${settings.prompt}\n${parts.join(' · ')}${negative}`;
}
