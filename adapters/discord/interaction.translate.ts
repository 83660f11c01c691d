/**
 * Discord interactions into bot/'s words: who asked (`Actor`) and what (`BotCommand`). Pure: no network, no replies.
 */
import {
  GuildMember,
  PermissionFlagsBits,
  type Attachment as DiscordAttachment,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type MessageContextMenuCommandInteraction,
  type RepliableInteraction,
} from 'discord.js';
import { decodeCustomId } from './button.codec.js';
import type { Actor, BotCommand, QuotaKind } from '../../bot/types.js';
import { PictalkError, describe } from '../../common/errors.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../../inference/types.js';
import { toBotAttachment } from './attachment.download.js';
import { CAPTION_MESSAGE_COMMAND } from './commands.js';

/** What to do with one interaction: hand a command to bot/, or answer at once without bot/. */
export type Translation =
  | {
      kind: 'command';
      command: BotCommand;
      /** Defer ephemerally: moderator commands, personal status, and button acknowledgements nobody else needs. */
      ephemeral: boolean;
      /** For buttons: the message the button sits on (a `delete` reply removes it with the job's messages). */
      message?: { channelId: string; id: string };
    }
  | { kind: 'answer'; text: string };

const IMAGE_NAME = /\.(png|jpe?g|webp|gif)$/i;

/** The first attachment that claims to be an image; the bytes are checked later by bot/. */
export function firstImage(attachments: Iterable<DiscordAttachment>): DiscordAttachment | undefined {
  for (const attachment of attachments) {
    if (attachment.contentType?.startsWith('image/') || IMAGE_NAME.test(attachment.name)) return attachment;
  }
  return undefined;
}

export function actorOf(interaction: RepliableInteraction): Actor {
  const { member, user } = interaction;
  let roleIds: string[] = [];
  let displayName = user.globalName ?? user.username;
  if (member instanceof GuildMember) {
    // The cached member resolves role ids against the guild's role cache (filled by GUILD_CREATE); @everyone is implied.
    roleIds = member.roles.cache.filter((role) => role.id !== interaction.guildId).map((role) => role.id);
    displayName = member.displayName;
  } else if (member) {
    roleIds = [...member.roles];
    displayName = member.nick ?? displayName;
  }
  return {
    platform: 'discord',
    userId: user.id,
    // Commands are registered for guilds only; a DM (user install) still gets a space of its own.
    spaceId: interaction.guildId ?? `dm:${user.id}`,
    roleIds,
    // `member.permissions` in the payload is computed by Discord for this channel, overwrites and admin included.
    platformModerator: interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) ?? false,
    displayName,
  };
}

function quotaKind(value: string): QuotaKind {
  if (value === 'imagine' || value === 'caption') return value;
  throw new PictalkError('input.invalid', `Expected \`kind\` to be \`imagine\` or \`caption\`, got ${describe(value)}`);
}

function scheduler(value: string | null): SchedulerName | undefined {
  if (value === null) return undefined;
  if ((SCHEDULER_NAMES as readonly string[]).includes(value)) return value as SchedulerName;
  throw new PictalkError('input.invalid', `Expected \`scheduler\` to be one of ${SCHEDULER_NAMES.join(', ')}, got ${describe(value)}`);
}

function chatInput(interaction: ChatInputCommandInteraction): Translation {
  const { options } = interaction;
  const command = (c: BotCommand, ephemeral = false): Translation => ({ kind: 'command', command: c, ephemeral });
  switch (interaction.commandName) {
    case 'imagine':
      return command({
        name: 'imagine',
        options: {
          prompt: options.getString('prompt', true),
          negative: options.getString('negative') ?? undefined,
          seed: options.getInteger('seed') ?? undefined,
          steps: options.getInteger('steps') ?? undefined,
          guidance: options.getNumber('guidance') ?? undefined,
          count: options.getInteger('count') ?? undefined,
          scheduler: scheduler(options.getString('scheduler')),
        },
      });
    case 'caption':
      return command({
        name: 'caption',
        attachment: toBotAttachment(options.getAttachment('image', true)),
        voice: options.getBoolean('voice') ?? undefined,
      });
    case 'pictalk':
      return command({ name: 'status' }, true);
    case 'quota': {
      const group = options.getSubcommandGroup(false);
      const sub = options.getSubcommand(true);
      if (group === 'set') {
        const kind = quotaKind(options.getString('kind', true));
        const limit = options.getInteger('limit', true);
        if (sub === 'user') return command({ name: 'quota.set', target: { kind: 'user', id: options.getUser('user', true).id }, kind, limit }, true);
        if (sub === 'role') return command({ name: 'quota.set', target: { kind: 'role', id: options.getRole('role', true).id }, kind, limit }, true);
        if (sub === 'default') return command({ name: 'quota.set', target: { kind: 'default' }, kind, limit }, true);
      }
      if (sub === 'show') {
        const user = options.getUser('user');
        return command({ name: 'quota.show', target: user ? { kind: 'user', id: user.id } : undefined }, true);
      }
      if (sub === 'reset') return command({ name: 'quota.reset', target: { kind: 'user', id: options.getUser('user', true).id } }, true);
      throw new PictalkError('input.invalid', `Expected a /quota subcommand set, show or reset, got ${describe([group, sub].filter(Boolean).join(' '))}`);
    }
    case 'blocklist': {
      const sub = options.getSubcommand(true);
      if (sub === 'add' || sub === 'remove') return command({ name: `blocklist.${sub}`, pattern: options.getString('pattern', true) }, true);
      if (sub === 'list') return command({ name: 'blocklist.list' }, true);
      throw new PictalkError('input.invalid', `Expected a /blocklist subcommand add, remove or list, got ${describe(sub)}`);
    }
    default:
      return { kind: 'answer', text: `pictalk does not know the command \`/${interaction.commandName}\`.` };
  }
}

function messageCommand(interaction: MessageContextMenuCommandInteraction): Translation {
  if (interaction.commandName !== CAPTION_MESSAGE_COMMAND) {
    return { kind: 'answer', text: `pictalk does not know the command \`${interaction.commandName}\`.` };
  }
  const image = firstImage(interaction.targetMessage.attachments.values());
  if (!image) return { kind: 'answer', text: 'That message has no image to caption.' };
  return { kind: 'command', command: { name: 'caption', attachment: toBotAttachment(image) }, ephemeral: false };
}

function button(interaction: ButtonInteraction): Translation {
  const pressed = decodeCustomId(interaction.customId);
  if (!pressed) return { kind: 'answer', text: 'This button is no longer in use.' };
  const { action, jobId } = pressed;
  const message = { channelId: interaction.message.channelId, id: interaction.message.id };
  if (action === 'reroll') return { kind: 'command', command: { name: 'reroll', jobId }, ephemeral: false, message };
  return { kind: 'command', command: { name: action, jobId }, ephemeral: true, message };
}

/** Translate a repliable interaction; `null` for kinds pictalk does not handle (modals, select menus). */
export function translateInteraction(interaction: RepliableInteraction): Translation | null {
  if (interaction.isChatInputCommand()) return chatInput(interaction);
  if (interaction.isMessageContextMenuCommand()) return messageCommand(interaction);
  if (interaction.isButton()) return button(interaction);
  return null;
}
