/**
 * Who may run moderator commands: the platform says so (Discord Manage Server, Slack workspace admin), or the actor
 * holds one of the configured moderator role ids. Checked at run time on every command, never cached, so a role
 * removed on the platform takes effect with the next request.
 */
import { PictalkError } from '../../common/errors.js';
import type { BotConfig } from '../config.js';
import type { Actor } from '../types.js';

export function isModerator(actor: Actor, config: BotConfig): boolean {
  return actor.platformModerator || actor.roleIds.some((roleId) => config.moderatorRoleIds.includes(roleId));
}

export function requireModerator(actor: Actor, config: BotConfig, command: string): void {
  if (!isModerator(actor, config)) {
    throw new PictalkError('permission.denied', `\`${command}\` needs a moderator`, { command });
  }
}
