/**
 * A button's target in the one string a platform gives it (a Discord custom id after `<action>:`, a Slack button's
 * `value`, the terminal's command argument): `<jobId>` or, for a per-image button, `<jobId>#<n>`. Job ids never
 * hold `#` (bot/jobs.ts newJobId), so the two read back unambiguously.
 */
import type { BotCommand, ButtonAction, ReplyButton } from './types.js';

export function buttonValue(button: Pick<ReplyButton, 'jobId' | 'index'>): string {
  return button.index === undefined ? button.jobId : `${button.jobId}#${button.index}`;
}

/** `<jobId>` or `<jobId>#<n>` back into its parts; undefined for anything else. */
export function parseButtonValue(value: string): { jobId: string; index?: number } | undefined {
  const match = /^([^#]+)(?:#(\d{1,3}))?$/.exec(value);
  if (!match) return undefined;
  return match[2] === undefined ? { jobId: match[1]! } : { jobId: match[1]!, index: Number(match[2]) };
}

/** The command a pressed button sends, or undefined for a value pictalk did not make. */
export function buttonCommand(action: ButtonAction, value: string): BotCommand | undefined {
  const target = parseButtonValue(value);
  if (!target) return undefined;
  if (action === 'vary') return target.index === undefined ? { name: 'vary', jobId: target.jobId } : { name: 'vary', jobId: target.jobId, index: target.index };
  return target.index === undefined ? { name: action, jobId: target.jobId } : undefined;
}
