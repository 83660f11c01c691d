/**
 * Discord interactions into bot/'s words: who asked (`Actor`) and what (`BotCommand`). Pure: no network, no replies.
 *
 * It reads the raw interaction object, as the gateway's INTERACTION_CREATE and the interactions endpoint deliver it
 * alike, so both ways of receiving interactions share one translation.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object
 */
import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ComponentType,
  InteractionType,
  PermissionFlagsBits,
  type APIApplicationCommandInteractionDataOption,
  type APIAttachment,
  type APIChatInputApplicationCommandInteraction,
  type APIInteraction,
  type APIMessageApplicationCommandInteraction,
  type APIMessageComponentInteraction,
  type APIUser,
} from 'discord.js';
import { decodeCustomId } from './button.codec.js';
import type { Actor, Attachment, BotCommand, QuotaKind, SafetyMode } from '../../bot/types.js';
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
const DISCORD_EPOCH = 1_420_070_400_000n;

/**
 * When a snowflake was made (ms since 1970): an interaction's id tells when Discord created it. An id that is not a
 * snowflake (a proxy's or a test's) tells nothing: `fallback`, the time it arrived, stands in.
 */
export function snowflakeTime(id: string, fallback = Date.now()): number {
  return isSnowflake(id) ? Number((BigInt(id) >> 22n) + DISCORD_EPOCH) : fallback;
}

/** Whether an id reads as a snowflake (a 64-bit decimal); the time and shard rules read nothing from other ids. */
export function isSnowflake(id: string): boolean {
  return /^\d{1,20}$/.test(id);
}

/** The first attachment that claims to be an image; the bytes are checked later by bot/. */
export function firstImage(attachments: Iterable<APIAttachment>): APIAttachment | undefined {
  for (const attachment of attachments) {
    if (attachment.content_type?.startsWith('image/') || IMAGE_NAME.test(attachment.filename)) return attachment;
  }
  return undefined;
}

/** The user behind an interaction: `member.user` in a server, `user` in a DM. */
export function userOf(interaction: APIInteraction): APIUser {
  const user = interaction.member?.user ?? interaction.user;
  if (!user) throw new PictalkError('input.invalid', `Expected interaction ${interaction.id} to name its user (member.user or user)`);
  return user;
}

/**
 * Whether the interaction's channel is age-restricted (`channel.nsfw` in the payload): only there may images the
 * safety checker flagged go out as spoilers, and only when the server's moderators chose that.
 */
export function ageRestrictedOf(interaction: APIInteraction): boolean {
  return (interaction.channel as { nsfw?: unknown } | undefined)?.nsfw === true;
}

/** The channel an interaction came from, if it names one. */
export function channelOf(interaction: APIInteraction): string | undefined {
  return interaction.channel?.id ?? interaction.channel_id;
}

export function actorOf(interaction: APIInteraction): Actor {
  const user = userOf(interaction);
  const { member } = interaction;
  // `member.permissions` in the payload is computed by Discord for this channel, overwrites included.
  const permissions = member && /^\d{1,40}$/.test(String(member.permissions)) ? BigInt(member.permissions) : 0n;
  const moderatorBits = PermissionFlagsBits.ManageGuild | PermissionFlagsBits.Administrator;
  return {
    platform: 'discord',
    userId: user.id,
    // Commands are registered for guilds only; a DM (user install) still gets a space of its own.
    spaceId: interaction.guild_id ?? `dm:${user.id}`,
    // `member.roles` lists role ids without @everyone, which is implied.
    roleIds: Array.isArray(member?.roles) ? [...member.roles] : [],
    platformModerator: (permissions & moderatorBits) !== 0n,
    displayName: member?.nick ?? user.global_name ?? user.username,
  };
}

function quotaKind(value: string): QuotaKind {
  if (value === 'imagine' || value === 'caption') return value;
  throw new PictalkError('input.invalid', `Expected \`kind\` to be \`imagine\` or \`caption\`, got ${describe(value)}`);
}

function scheduler(value: string | undefined): SchedulerName | undefined {
  if (value === undefined) return undefined;
  if ((SCHEDULER_NAMES as readonly string[]).includes(value)) return value as SchedulerName;
  throw new PictalkError('input.invalid', `Expected \`scheduler\` to be one of ${SCHEDULER_NAMES.join(', ')}, got ${describe(value)}`);
}

type Leaf = Extract<APIApplicationCommandInteractionDataOption, { value: unknown }>;
type IdOptionType = ApplicationCommandOptionType.User | ApplicationCommandOptionType.Role | ApplicationCommandOptionType.Channel;

/**
 * A chat-input command's options: the subcommand group and subcommand it names, and its leaf options by name, each
 * read with the type Discord declares for it (a wrong type is a clear error, never a silent coercion).
 */
class CommandOptions {
  readonly group: string | undefined;
  readonly subcommand: string | undefined;
  private readonly leaves = new Map<string, Leaf>();

  constructor(private readonly interaction: APIChatInputApplicationCommandInteraction) {
    let options = interaction.data.options ?? [];
    const group = options.find((o) => o.type === ApplicationCommandOptionType.SubcommandGroup);
    if (group) {
      this.group = group.name;
      options = group.options ?? [];
    }
    const sub = options.find((o) => o.type === ApplicationCommandOptionType.Subcommand);
    if (sub) {
      this.subcommand = sub.name;
      options = sub.options ?? [];
    }
    for (const option of options) if ('value' in option) this.leaves.set(option.name, option as Leaf);
  }

  private get(name: string, type: ApplicationCommandOptionType, required: boolean): unknown {
    const option = this.leaves.get(name);
    if (!option) {
      if (required) throw new PictalkError('input.invalid', `Expected the option \`${name}\` in /${this.interaction.data.name}, but it is missing`);
      return undefined;
    }
    if (option.type !== type) {
      throw new PictalkError('input.invalid', `Expected the option \`${name}\` to be of type ${ApplicationCommandOptionType[type]}, got ${ApplicationCommandOptionType[option.type]}`);
    }
    return option.value;
  }

  string(name: string): string | undefined;
  string(name: string, required: true): string;
  string(name: string, required = false): string | undefined {
    return this.get(name, ApplicationCommandOptionType.String, required) as string | undefined;
  }

  integer(name: string): number | undefined;
  integer(name: string, required: true): number;
  integer(name: string, required = false): number | undefined {
    return this.get(name, ApplicationCommandOptionType.Integer, required) as number | undefined;
  }

  number(name: string): number | undefined {
    return this.get(name, ApplicationCommandOptionType.Number, false) as number | undefined;
  }

  boolean(name: string): boolean | undefined {
    return this.get(name, ApplicationCommandOptionType.Boolean, false) as boolean | undefined;
  }

  /** Every leaf option with a plain value (string, number, boolean), by name: `/settings set`'s typed values. */
  values(): Record<string, string | number | boolean> {
    const values: Record<string, string | number | boolean> = {};
    for (const [name, option] of this.leaves) {
      if (typeof option.value === 'string' || typeof option.value === 'number' || typeof option.value === 'boolean') values[name] = option.value;
    }
    return values;
  }

  /** A user, role or channel option: its id (Discord resolves the object in `resolved`, which pictalk does not need). */
  id(name: string, type: IdOptionType): string;
  id(name: string, type: IdOptionType, required: false): string | undefined;
  id(name: string, type: IdOptionType, required = true): string | undefined {
    return this.get(name, type, required) as string | undefined;
  }

  attachment(name: string): APIAttachment;
  attachment(name: string, required: false): APIAttachment | undefined;
  attachment(name: string, required = true): APIAttachment | undefined {
    const id = this.get(name, ApplicationCommandOptionType.Attachment, required) as string | undefined;
    if (id === undefined) return undefined;
    const attachment = this.interaction.data.resolved?.attachments?.[id];
    if (!attachment) throw new PictalkError('input.invalid', `Expected the attachment ${describe(id)} of \`${name}\` in the interaction's resolved data`);
    return attachment;
  }
}

const toAttachment = (a: APIAttachment) => toBotAttachment({ name: a.filename, size: a.size, url: a.url, contentType: a.content_type ?? null });

/** `/imagine`'s picture and strength, where given (bot/ refuses a strength without a picture). */
function imageToImage(image: APIAttachment | undefined, strength: number | undefined): { image?: Attachment; strength?: number } {
  return { ...(image ? { image: toAttachment(image) } : {}), ...(strength !== undefined ? { strength } : {}) };
}

function chatInput(interaction: APIChatInputApplicationCommandInteraction): Translation {
  const options = new CommandOptions(interaction);
  const command = (c: BotCommand, ephemeral = false): Translation => ({ kind: 'command', command: c, ephemeral });
  const { User, Role, Channel } = ApplicationCommandOptionType;
  switch (interaction.data.name) {
    case 'imagine':
      return command({
        name: 'imagine',
        options: {
          prompt: options.string('prompt', true),
          negative: options.string('negative'),
          seed: options.integer('seed'),
          steps: options.integer('steps'),
          guidance: options.number('guidance'),
          count: options.integer('count'),
          scheduler: scheduler(options.string('scheduler')),
          ...imageToImage(options.attachment('image', false), options.number('strength')),
        },
      });
    case 'caption':
      return command({ name: 'caption', attachment: toAttachment(options.attachment('image')), voice: options.boolean('voice') });
    case 'pictalk':
      return command({ name: 'status' }, true);
    case 'quota': {
      const { group, subcommand: sub } = options;
      if (group === 'set') {
        const kind = quotaKind(options.string('kind', true));
        const limit = options.integer('limit', true);
        if (sub === 'user') return command({ name: 'quota.set', target: { kind: 'user', id: options.id('user', User) }, kind, limit }, true);
        if (sub === 'role') return command({ name: 'quota.set', target: { kind: 'role', id: options.id('role', Role) }, kind, limit }, true);
        if (sub === 'default') return command({ name: 'quota.set', target: { kind: 'default' }, kind, limit }, true);
      }
      if (group === undefined && sub === 'show') {
        const user = options.id('user', User, false);
        return command({ name: 'quota.show', target: user ? { kind: 'user', id: user } : undefined }, true);
      }
      if (group === undefined && sub === 'reset') return command({ name: 'quota.reset', target: { kind: 'user', id: options.id('user', User) } }, true);
      throw new PictalkError('input.invalid', `Expected a /quota subcommand set, show or reset, got ${describe([group, sub].filter(Boolean).join(' '))}`);
    }
    case 'settings': {
      const { group, subcommand: sub } = options;
      if (group === undefined || group === 'server') {
        const scope = group === 'server' ? 'server' : 'user';
        if (sub === 'show') return command({ name: 'settings.show', scope }, true);
        if (sub === 'set') return command({ name: 'settings.set', scope, values: options.values() }, true);
        if (sub === 'reset') {
          const key = options.string('key');
          return command({ name: 'settings.reset', scope, ...(key !== undefined ? { key } : {}) }, true);
        }
      }
      throw new PictalkError('input.invalid', `Expected a /settings subcommand show, set, reset or server, got ${describe([group, sub].filter(Boolean).join(' '))}`);
    }
    case 'blocklist': {
      const sub = options.subcommand;
      if (sub === 'add' || sub === 'remove') return command({ name: `blocklist.${sub}`, pattern: options.string('pattern', true) }, true);
      if (sub === 'list') return command({ name: 'blocklist.list' }, true);
      throw new PictalkError('input.invalid', `Expected a /blocklist subcommand add, remove or list, got ${describe(sub)}`);
    }
    case 'safety': {
      const sub = options.subcommand;
      if (sub === 'show') return command({ name: 'safety.show' }, true);
      if (sub === 'set') {
        const channelId = options.id('channel', Channel, false);
        return command({ name: 'safety.set', mode: options.string('mode', true) as SafetyMode, ...(channelId ? { channelId } : {}) }, true);
      }
      throw new PictalkError('input.invalid', `Expected a /safety subcommand show or set, got ${describe(sub)}`);
    }
    default:
      return { kind: 'answer', text: `pictalk does not know the command \`/${interaction.data.name}\`.` };
  }
}

function messageCommand(interaction: APIMessageApplicationCommandInteraction): Translation {
  if (interaction.data.name !== CAPTION_MESSAGE_COMMAND) {
    return { kind: 'answer', text: `pictalk does not know the command \`${interaction.data.name}\`.` };
  }
  const target = interaction.data.resolved.messages[interaction.data.target_id];
  const image = target ? firstImage(target.attachments) : undefined;
  if (!image) return { kind: 'answer', text: 'That message has no image to caption.' };
  return { kind: 'command', command: { name: 'caption', attachment: toAttachment(image) }, ephemeral: false };
}

function button(interaction: APIMessageComponentInteraction): Translation {
  const pressed = decodeCustomId(interaction.data.custom_id);
  if (!pressed) return { kind: 'answer', text: 'This button is no longer in use.' };
  const { action, jobId } = pressed;
  const message = { channelId: interaction.message.channel_id, id: interaction.message.id };
  if (action === 'reroll') return { kind: 'command', command: { name: 'reroll', jobId }, ephemeral: false, message };
  if (action === 'vary') {
    return { kind: 'command', command: { name: 'vary', jobId, ...(pressed.index !== undefined ? { index: pressed.index } : {}) }, ephemeral: false, message };
  }
  return { kind: 'command', command: { name: action, jobId }, ephemeral: true, message };
}

/**
 * Translate an interaction; `null` for kinds pictalk does not handle (autocomplete, modals, select menus, user
 * commands). PING is the caller's (it exists only on the interactions endpoint).
 */
export function translateInteraction(interaction: APIInteraction): Translation | null {
  if (interaction.type === InteractionType.ApplicationCommand) {
    if (interaction.data.type === ApplicationCommandType.ChatInput) return chatInput(interaction as APIChatInputApplicationCommandInteraction);
    if (interaction.data.type === ApplicationCommandType.Message) return messageCommand(interaction as APIMessageApplicationCommandInteraction);
    return { kind: 'answer', text: `pictalk does not know the command \`${interaction.data.name}\`.` };
  }
  if (interaction.type === InteractionType.MessageComponent && interaction.data.component_type === ComponentType.Button) {
    return button(interaction);
  }
  return null;
}
