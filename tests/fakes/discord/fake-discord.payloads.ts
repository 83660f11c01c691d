/**
 * Payload builders for the fake Discord: users, members, the guild of GUILD_CREATE, messages, attachments and
 * interactions, shaped as the Discord API documents them (types from discord-api-types via discord.js, types only).
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object
 */
import type {
  APIApplicationCommandInteractionDataOption,
  APIAttachment,
  APIGuildMember,
  APIInteractionDataResolved,
  APIInteractionGuildMember,
  APIMessage,
  APIRole,
  APIUser,
  GatewayGuildCreateDispatchData,
} from 'discord.js';

// The numbers of the Discord API, named once (discord-api-types enums are values, and the fake takes types only).
export const InteractionType = { ApplicationCommand: 2, MessageComponent: 3 } as const;
export const CommandType = { ChatInput: 1, User: 2, Message: 3 } as const;
export const OptionType = {
  Subcommand: 1, SubcommandGroup: 2, String: 3, Integer: 4, Boolean: 5, User: 6, Channel: 7, Role: 8, Mentionable: 9, Number: 10, Attachment: 11,
} as const;
export const MessageFlag = { Ephemeral: 1 << 6, Loading: 1 << 7, IsVoiceMessage: 1 << 13 } as const;

/** Permission bits, as decimal strings go over the wire. */
export const Permission = {
  ManageGuild: 1n << 5n,
  AddReactions: 1n << 6n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  UseApplicationCommands: 1n << 31n,
} as const;
export const MEMBER_PERMISSIONS = Permission.ViewChannel | Permission.SendMessages | Permission.EmbedLinks | Permission.AttachFiles
  | Permission.ReadMessageHistory | Permission.AddReactions | Permission.UseApplicationCommands;

const DISCORD_EPOCH = 1_420_070_400_000n;
let increment = 0n;
/** A snowflake: ms since the Discord epoch << 22, plus a counter in the low bits. */
export function snowflake(at = Date.now()): string {
  increment = (increment + 1n) & 0xfffn;
  return (((BigInt(at) - DISCORD_EPOCH) << 22n) | increment).toString();
}

export function user(id: string, username: string, bot = false): APIUser {
  return { id, username, global_name: bot ? null : username[0]!.toUpperCase() + username.slice(1), discriminator: '0', avatar: null, ...(bot ? { bot: true } : {}) };
}

export function role(id: string, name: string, permissions: bigint, position: number): APIRole {
  return {
    id, name, color: 0, colors: { primary_color: 0, secondary_color: null, tertiary_color: null }, hoist: false, icon: null, unicode_emoji: null,
    position, permissions: permissions.toString(), managed: false, mentionable: false, flags: 0 as APIRole['flags'],
  };
}

export interface GuildWorld {
  guildId: string;
  /** Default: 'pictalk test server'. */
  name?: string;
  channelId: string;
  ownerId: string;
  roles: APIRole[];
  members: APIGuildMember[];
}

export function guildCreate(world: GuildWorld): GatewayGuildCreateDispatchData {
  return {
    id: world.guildId, name: world.name ?? 'pictalk test server', icon: null, splash: null, discovery_splash: null, owner_id: world.ownerId,
    afk_channel_id: null, afk_timeout: 300, verification_level: 0, default_message_notifications: 0, explicit_content_filter: 0,
    roles: world.roles, emojis: [], features: [], mfa_level: 0, application_id: null, system_channel_id: null, system_channel_flags: 0,
    rules_channel_id: null, vanity_url_code: null, description: null, banner: null, premium_tier: 0, premium_subscription_count: 0,
    preferred_locale: 'en-US' as GatewayGuildCreateDispatchData['preferred_locale'], public_updates_channel_id: null, nsfw_level: 0,
    stickers: [], premium_progress_bar_enabled: false, safety_alerts_channel_id: null, hub_type: null, incidents_data: null,
    max_video_channel_users: 25, max_stage_video_channel_users: 50, region: 'deprecated', widget_enabled: false, widget_channel_id: null,
    // GUILD_CREATE's extra fields
    joined_at: new Date().toISOString(), large: false, unavailable: false, member_count: world.members.length,
    voice_states: [], members: world.members, presences: [], threads: [], stage_instances: [], guild_scheduled_events: [],
    soundboard_sounds: [],
    channels: [{
      id: world.channelId, type: 0, name: 'general', position: 0, permission_overwrites: [], topic: null, nsfw: false,
      last_message_id: null, rate_limit_per_user: 0, parent_id: null, flags: 0,
    }],
  } as unknown as GatewayGuildCreateDispatchData;
}

export function member(u: APIUser, roleIds: string[]): APIGuildMember {
  return { user: u, nick: null, avatar: null, banner: null, roles: roleIds, joined_at: new Date().toISOString(), premium_since: null, deaf: false, mute: false, flags: 0 as APIGuildMember['flags'], pending: false };
}

/** The member object of an interaction: the member plus its permissions in the channel, computed by Discord. */
export function interactionMember(m: APIGuildMember, permissions: bigint): APIInteractionGuildMember {
  return { ...m, user: m.user, permissions: permissions.toString() } as APIInteractionGuildMember;
}

/** PNG width and height from the IHDR chunk (bytes 16..23), as Discord reports them for images. */
export function pngSize(data: Buffer): { width: number; height: number } | null {
  if (data.length < 24 || data.readUInt32BE(0) !== 0x89504e47 || data.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

export interface StoredFile {
  id: string;
  name: string;
  contentType: string;
  data: Buffer;
}

export function attachmentObject(file: StoredFile, baseUrl: string, channelId: string, extra: Partial<APIAttachment> = {}): APIAttachment {
  const url = `${baseUrl}/attachments/${channelId}/${file.id}/${encodeURIComponent(file.name)}`;
  return {
    id: file.id, filename: file.name, size: file.data.length, url, proxy_url: url, content_type: file.contentType,
    ...(pngSize(file.data) ?? {}), ...extra,
  };
}

/** Where an interaction happens: a guild's text channel (with the member) or the user's DM with the bot. */
export type InteractionInput = {
  applicationId: string;
  channelId: string;
  attachmentSizeLimit: number;
} & ({ guildId: string; member: APIInteractionGuildMember; nsfw?: boolean } | { guildId?: undefined; user: APIUser });

/** Interaction context types. @see https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object-interaction-context-types */
export const InteractionContext = { Guild: 0, BotDm: 1 } as const;

/** A DM channel with the bot, as in an interaction's `channel` and `POST /users/@me/channels`. */
export function dmChannel(channelId: string, recipient: APIUser) {
  return { id: channelId, type: 1, last_message_id: null, flags: 0, recipients: [recipient] };
}

function base(input: InteractionInput, type: number, id: string, token: string) {
  const common = {
    id, token, type, version: 1, application_id: input.applicationId, channel_id: input.channelId, locale: 'en-US', entitlements: [],
    app_permissions: (MEMBER_PERMISSIONS | Permission.ManageGuild).toString(), attachment_size_limit: input.attachmentSizeLimit,
  };
  if (input.guildId === undefined) {
    // A DM: `user` instead of `member`, no guild; a guild-installed app's owner key is "0" there.
    return { ...common, channel: dmChannel(input.channelId, input.user), user: input.user, authorizing_integration_owners: { 0: '0' }, context: InteractionContext.BotDm };
  }
  return {
    ...common, guild_id: input.guildId,
    channel: { id: input.channelId, type: 0, guild_id: input.guildId, name: 'general', permissions: input.member.permissions, flags: 0, nsfw: input.nsfw === true, position: 0, last_message_id: null, rate_limit_per_user: 0, parent_id: null, topic: null, permission_overwrites: [] },
    guild: { id: input.guildId, locale: 'en-US', features: [] },
    member: input.member, guild_locale: 'en-US',
    authorizing_integration_owners: { 0: input.guildId }, context: InteractionContext.Guild,
  };
}

/** `data.guild_id`: only for a command registered in that guild (the fake's commands are, for guild interactions). */
const commandGuild = (input: InteractionInput) => (input.guildId === undefined ? {} : { guild_id: input.guildId });

export function chatInputInteraction(
  input: InteractionInput, id: string, token: string, command: { id: string; name: string },
  options: APIApplicationCommandInteractionDataOption[], resolved?: APIInteractionDataResolved,
) {
  return {
    ...base(input, InteractionType.ApplicationCommand, id, token),
    data: { id: command.id, name: command.name, type: CommandType.ChatInput, ...commandGuild(input), options, ...(resolved ? { resolved } : {}) },
  };
}

export function messageCommandInteraction(
  input: InteractionInput, id: string, token: string, command: { id: string; name: string }, target: APIMessage,
) {
  return {
    ...base(input, InteractionType.ApplicationCommand, id, token),
    data: { id: command.id, name: command.name, type: CommandType.Message, ...commandGuild(input), target_id: target.id, resolved: { messages: { [target.id]: target } } },
  };
}

export function buttonInteraction(input: InteractionInput, id: string, token: string, customId: string, message: APIMessage) {
  return {
    ...base(input, InteractionType.MessageComponent, id, token),
    data: { custom_id: customId, component_type: 2 },
    message,
  };
}
