/**
 * bot/'s buttons as Discord custom ids and back: `<action>:<jobId>`, or `<action>:<jobId>#<n>` for a per-image button
 * (Vary), at most 100 characters (Discord's limit).
 * @see https://discord.com/developers/docs/components/reference#anatomy-of-a-component-custom-id
 */
import { buttonValue, parseButtonValue } from '../../bot/buttons.js';
import { BUTTON_ACTIONS, type ButtonAction, type ReplyButton } from '../../bot/types.js';
import { PictalkError, describe } from '../../common/errors.js';

export const MAX_CUSTOM_ID = 100;

export function encodeCustomId(button: Pick<ReplyButton, 'action' | 'jobId' | 'index'>): string {
  const id = `${button.action}:${buttonValue(button)}`;
  if (button.jobId === '' || id.length > MAX_CUSTOM_ID) {
    throw new PictalkError('input.invalid', `Expected a button's custom id of 1 to ${MAX_CUSTOM_ID} characters, got ${describe(id)} (${id.length})`);
  }
  return id;
}

/** The button a custom id names, or undefined for one pictalk did not make (or an older bot's). */
export function decodeCustomId(customId: string): { action: ButtonAction; jobId: string; index?: number } | undefined {
  const colon = customId.indexOf(':');
  if (colon < 0) return undefined;
  const action = customId.slice(0, colon) as ButtonAction;
  const target = parseButtonValue(customId.slice(colon + 1));
  if (!BUTTON_ACTIONS.includes(action) || !target) return undefined;
  return target.index === undefined || action === 'vary' ? { action, ...target } : undefined;
}
