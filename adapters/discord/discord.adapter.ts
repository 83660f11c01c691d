/**
 * The Discord adapter: a discord.js gateway client (intent Guilds only, no privileged intents) that defers every
 * interaction within Discord's 3-second window, translates it for bot/, and turns bot/'s status and reply into edits
 * and follow-ups of the interaction's response.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction
 */
import { errorReply } from '../../bot/replies.js';
import { once } from 'node:events';
import {
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  type Interaction,
  type RepliableInteraction,
} from 'discord.js';
import type { BotRequest, Conversation } from '../../bot/types.js';
import { PictalkError, describe, isPictalkError } from '../../common/errors.js';
import { registerCommands, type CommandLimits } from './commands.js';
import { DiscordConversation, reconnectDiscord, type Logger } from './discord.conversation.js';
import { actorOf, translateInteraction, type Translation } from './interaction.translate.js';

export type { Logger } from './discord.conversation.js';

/** The one thing the adapter needs from bot/. */
export interface BotPort {
  /** bot/'s `Bot.handle` resolves to an outcome the adapter does not need. */
  handle(request: BotRequest, conversation: Conversation): Promise<unknown>;
}

export interface DiscordAdapterOptions {
  token: string;
  applicationId: string;
  /** REST base without the version, e.g. `https://discord.com/api` (the default) or a fake's `http://127.0.0.1:PORT/api`. */
  apiUrl?: string;
  bot: BotPort;
  /** Register the commands in this guild only (instant, for development); globally when absent. */
  guildId?: string;
  logger?: Logger;
  /** Bulk-overwrite the command definitions after login (default true). */
  registerCommands?: boolean;
  /** Limits the command bodies carry from the bot's settings (the prompt's length); default bot/'s defaults. */
  commandLimits?: CommandLimits;
  /** Least time between two progress edits of one reply (default 1500 ms). */
  statusIntervalMs?: number;
  /** How long an interaction token works (default Discord's 15 minutes); later replies go to the channel. */
  tokenLifetimeMs?: number;
}

export interface DiscordAdapter {
  client: Client;
  /** A conversation from a job's route (kept by bot/ at accept), for a job that a restarted front follows again. */
  reconnect(route: Record<string, unknown> | undefined): Conversation | undefined;
  stop(): Promise<void>;
}

const DEFAULT_STATUS_INTERVAL_MS = 1500;
// Interaction ids already taken: a resumed gateway session or a duplicate dispatch must not start a second job.
const SEEN_LIMIT = 5000;


const SNOWFLAKE = /^\d{17,20}$/;

/** Every setting checked up front, each with the same message shape. */
function checkOptions(options: DiscordAdapterOptions): void {
  const fail = (name: string, expected: string, value: unknown) =>
    new PictalkError('config.invalid', `Expected \`${name}\` to be ${expected}, got ${describe(value)}`, { setting: name });
  if (typeof options.token !== 'string' || options.token.length === 0) throw fail('token', 'a non-empty string', options.token ? '(hidden)' : options.token);
  if (typeof options.applicationId !== 'string' || !SNOWFLAKE.test(options.applicationId)) throw fail('applicationId', 'a snowflake (17 to 20 digits)', options.applicationId);
  if (options.guildId !== undefined && !SNOWFLAKE.test(options.guildId)) throw fail('guildId', 'a snowflake (17 to 20 digits)', options.guildId);
  if (options.apiUrl !== undefined && !/^https?:\/\/[^/]/.test(options.apiUrl)) throw fail('apiUrl', 'an http(s) URL such as https://discord.com/api', options.apiUrl);
  if (typeof options.bot?.handle !== 'function') throw fail('bot', 'an object with a handle(request, conversation) method', options.bot);
  const interval = options.statusIntervalMs;
  if (interval !== undefined && (!Number.isFinite(interval) || interval < 0)) throw fail('statusIntervalMs', 'a number of milliseconds >= 0', interval);
  const lifetime = options.tokenLifetimeMs;
  if (lifetime !== undefined && (!Number.isFinite(lifetime) || lifetime <= 0)) throw fail('tokenLifetimeMs', 'a number of milliseconds > 0', lifetime);
}

/** Log in, wait until the guilds are cached, register the commands, and start answering interactions. */
export async function startDiscordAdapter(options: DiscordAdapterOptions): Promise<DiscordAdapter> {
  checkOptions(options);
  const { token, applicationId, bot, guildId } = options;
  const logger: Logger = options.logger ?? console;
  const statusIntervalMs = options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    ...(options.apiUrl ? { rest: { api: options.apiUrl } } : {}),
  });
  const seen = new Set<string>();

  const answer = async (interaction: RepliableInteraction, text: string): Promise<void> => {
    await interaction.reply({ content: text, flags: MessageFlags.Ephemeral });
  };

  async function onInteraction(interaction: RepliableInteraction): Promise<void> {
    const receivedAt = Date.now();
    if (seen.has(interaction.id)) return;
    seen.add(interaction.id);
    if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value as string);

    let translation: Translation | null;
    try {
      translation = translateInteraction(interaction);
    } catch (error) {
      await answer(interaction, isPictalkError(error) ? error.message : 'pictalk could not read that command.');
      return;
    }
    if (!translation) return;
    if (translation.kind === 'answer') {
      await answer(interaction, translation.text);
      return;
    }

    // Acknowledge first: Discord drops an interaction that gets no response within 3 s of its dispatch.
    let placeholderId: string | undefined;
    try {
      // withResponse: the placeholder's id, so a reply after the token expired can remove it with the bot token
      const deferred = await interaction.deferReply({ ...(translation.ephemeral ? { flags: MessageFlags.Ephemeral } : {}), withResponse: true });
      placeholderId = deferred.resource?.message?.id;
    } catch (error) {
      logger.warn('discord: could not defer an interaction in time; it is dropped', { interaction: interaction.id, error: String(error) });
      return;
    }

    const { command, message } = translation;
    const conversation = new DiscordConversation(interaction, {
      client,
      applicationId,
      statusIntervalMs,
      logger,
      ...(options.tokenLifetimeMs !== undefined ? { tokenLifetimeMs: options.tokenLifetimeMs } : {}),
      ...(placeholderId && !translation.ephemeral ? { placeholderId } : {}),
      ...(message ? { buttonMessage: message } : {}),
    });
    const request: BotRequest = {
      id: interaction.id,
      actor: actorOf(interaction),
      channelId: interaction.channelId ?? '',
      command,
      receivedAt,
    };
    try {
      await bot.handle(request, conversation);
    } catch (error) {
      logger.error('discord: bot.handle failed', { interaction: interaction.id, error: String(error) });
      if (!conversation.finished) await conversation.finish(errorReply(error));
    }
  }

  client.on(Events.InteractionCreate, (interaction: Interaction) => {
    if (!interaction.isRepliable()) return;
    onInteraction(interaction).catch((error: unknown) =>
      logger.error('discord: an interaction failed', { interaction: interaction.id, error: String(error) }));
  });
  client.on(Events.Error, (error) => logger.error('discord: client error', { error: String(error) }));
  client.on(Events.ShardResume, (shard, replayed) => logger.info('discord: gateway session resumed', { shard, replayed }));

  try {
    const ready = once(client, Events.ClientReady);
    await client.login(token);
    await ready;
    if (options.registerCommands ?? true) {
      await registerCommands(client.rest, applicationId, guildId, options.commandLimits);
      logger.info('discord: commands registered', { scope: guildId ? `guild ${guildId}` : 'global' });
    }
  } catch (error) {
    // A half-started client keeps its websocket and timers alive; nothing may outlive a failed start.
    await client.destroy();
    throw error;
  }
  logger.info('discord: ready', { user: client.user?.tag });

  return {
    client,
    reconnect: (route) => reconnectDiscord(route, { client, applicationId, statusIntervalMs, logger }),
    async stop() {
      client.removeAllListeners(Events.InteractionCreate);
      await client.destroy();
    },
  };
}
