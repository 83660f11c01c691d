/**
 * The Discord adapter, in one of two modes that share everything past the arrival of an interaction
 * (interaction.handler.ts: translation, acknowledgement, the conversation with bot/):
 *
 * - **Gateway** (default): a discord.js client (intent Guilds only, no privileged intents) on the shards this process
 *   owns (`shards`: all by default, or some of them so that several processes split one bot's gateway). discord.js
 *   identifies, heartbeats and resumes each shard; interactions are read from the raw dispatches and acknowledged
 *   through the callback endpoint.
 * - **HTTP interactions** (`http`): no gateway at all; Discord POSTs interactions to this process's endpoint
 *   (discord.http.ts), so any number of identical fronts can answer them.
 *
 * Replies go through `@discordjs/rest` in both modes: its per-route rate-limit buckets and 429 retries apply.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction
 * @see https://discord.com/developers/docs/events/gateway#sharding
 */
import { once } from 'node:events';
import {
  Client,
  DiscordAPIError,
  Events,
  GatewayDispatchEvents,
  GatewayIntentBits,
  InteractionResponseType,
  MessageFlags,
  REST,
  Routes,
  type APIInteraction,
  type APIInteractionResponse,
  type GatewayDispatchPayload,
  type RESTGetAPIGatewayBotResult,
} from 'discord.js';
import type { Conversation } from '../../bot/types.js';
import type { EndpointMetrics } from '../../inference/metrics.js';
import { PictalkError, describe } from '../../common/errors.js';
import { registerCommands, type CommandLimits } from './commands.js';
import { reconnectDiscord, type Logger } from './discord.conversation.js';
import { startInteractionsEndpoint, type InteractionsEndpoint } from './discord.http.js';
import { InteractionHandler, type BotPort } from './interaction.handler.js';
import { isSnowflake } from './interaction.translate.js';

export type { Logger } from './discord.conversation.js';
export type { BotPort } from './interaction.handler.js';

/** Which shards of how many this process connects (gateway mode). */
export interface ShardPlan {
  /** The bot's total shard count, or `auto`: Discord's recommendation from `GET /gateway/bot`. */
  count: number | 'auto';
  /** The shard ids this process connects; all of them when absent. */
  ids?: number[];
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
  /** Bulk-overwrite the command definitions at start (default true). Several fronts may all do it: it is idempotent. */
  registerCommands?: boolean;
  /** Limits the command bodies carry from the bot's settings (the prompt's length); default bot/'s defaults. */
  commandLimits?: CommandLimits;
  /** Least time between two progress edits of one reply (default 1500 ms). */
  statusIntervalMs?: number;
  /** How long an interaction token works (default Discord's 15 minutes); later replies go to the channel. */
  tokenLifetimeMs?: number;
  /** HTTP interactions mode: the application's public key and the endpoint's port (0: any free one). No gateway. */
  http?: { publicKey: string; port: number; host?: string };
  /** HTTP mode: where the endpoint reports acknowledgement times and refusals (inference/metrics.ts). */
  metrics?: EndpointMetrics;
  /** Gateway mode: the shards of this process (default: one shard, or all of `count`). */
  shards?: ShardPlan;
}

export interface DiscordAdapter {
  /** `gateway` or `http`. */
  mode: 'gateway' | 'http';
  /** Gateway mode: the shard ids this process connects, and the bot's shard count. */
  shards?: { ids: number[]; count: number };
  /** HTTP mode: the endpoint's port. */
  port?: number;
  /** A conversation from a job's route (kept by bot/ at accept), for a job that a restarted front follows again. */
  reconnect(route: Record<string, unknown> | undefined): Conversation | undefined;
  /**
   * Stop taking interactions and wait (at most `timeoutMs`) until bot/ has taken every one already acknowledged; a
   * stopping front calls it before letting go of its jobs. Resolves to the number still not taken.
   */
  quiesce(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const DEFAULT_STATUS_INTERVAL_MS = 1500;
const SNOWFLAKE = /^\d{17,20}$/;
// The initial responses that leave a "thinking…" message of their own (a deferred update leaves the pressed one).
const LEAVES_PLACEHOLDER = new Set([InteractionResponseType.DeferredChannelMessageWithSource]);

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
  const { http, shards } = options;
  if (http && !(Number.isInteger(http.port) && http.port >= 0 && http.port <= 65_535)) throw fail('http.port', 'a port from 0 to 65535', http.port);
  if (http && shards) throw fail('shards', 'absent in HTTP interactions mode (no gateway connection is opened)', shards);
  if (shards) {
    const { count, ids } = shards;
    if (count !== 'auto' && !(Number.isInteger(count) && count >= 1)) throw fail('shards.count', '`auto` or an integer >= 1', count);
    if (ids !== undefined) {
      if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0) || new Set(ids).size !== ids.length) throw fail('shards.ids', 'distinct shard ids >= 0', ids);
      if (count !== 'auto' && ids.some((id) => id >= count)) throw fail('shards.ids', `shard ids below the shard count ${count}`, ids);
    }
  }
}

/** Which shard a guild's events arrive on; DMs arrive on shard 0. @see https://discord.com/developers/docs/events/gateway#sharding */
export function shardOf(guildId: string | undefined, count: number): number {
  return guildId === undefined || !isSnowflake(guildId) ? 0 : Number((BigInt(guildId) >> 22n) % BigInt(count));
}

/** Start the adapter in the mode its options ask for; resolves once it takes interactions. */
export async function startDiscordAdapter(options: DiscordAdapterOptions): Promise<DiscordAdapter> {
  checkOptions(options);
  const rest = new REST({ version: '10', ...(options.apiUrl ? { api: options.apiUrl } : {}) }).setToken(options.token);
  const logger: Logger = options.logger ?? console;
  const common = {
    rest, applicationId: options.applicationId, bot: options.bot, logger, statusIntervalMs: options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS,
    ...(options.tokenLifetimeMs !== undefined ? { tokenLifetimeMs: options.tokenLifetimeMs } : {}),
  };
  const register = async (): Promise<void> => {
    if (!(options.registerCommands ?? true)) return;
    await registerCommands(rest, options.applicationId, options.guildId, options.commandLimits);
    logger.info('discord: commands registered', { scope: options.guildId ? `guild ${options.guildId}` : 'global' });
  };
  const reconnect = (route: Record<string, unknown> | undefined) => reconnectDiscord(route, common);

  if (options.http) {
    const handler = new InteractionHandler({ ...common, footer: () => 'Discord: this front answers through the HTTP interactions endpoint (no gateway).' });
    // Listening first: the endpoint must answer Discord's check as soon as the URL is saved in the portal.
    const endpoint: InteractionsEndpoint = await startInteractionsEndpoint({
      ...options.http, handler, rest, applicationId: options.applicationId, logger, ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    try {
      await register();
    } catch (error) {
      // A wrong token is the operator's to fix now; anything else (Discord unreachable for a moment) leaves the
      // commands as the last registration left them, and interactions keep coming to the endpoint.
      if (error instanceof DiscordAPIError && error.status === 401) {
        await endpoint.close();
        throw new PictalkError('config.invalid', `Discord refused DISCORD_TOKEN while registering the commands (${error.message})`, { setting: 'DISCORD_TOKEN' });
      }
      logger.warn('discord: could not register the commands; the endpoint takes interactions anyway', { error: String(error) });
    }
    return {
      mode: 'http', port: endpoint.port, reconnect,
      async quiesce(timeoutMs) {
        await endpoint.close();
        return handler.drain(timeoutMs);
      },
      stop: () => endpoint.close(),
    };
  }
  return startGateway(options, rest, common, register, reconnect);
}

async function startGateway(
  options: DiscordAdapterOptions, rest: REST, common: ConstructorParameters<typeof InteractionHandler>[0], register: () => Promise<void>,
  reconnect: DiscordAdapter['reconnect'],
): Promise<DiscordAdapter> {
  const { logger } = common;
  let count = 1;
  let ids = [0];
  if (options.shards) {
    count = options.shards.count === 'auto'
      ? ((await rest.get(Routes.gatewayBot())) as RESTGetAPIGatewayBotResult).shards
      : options.shards.count;
    ids = options.shards.ids ?? Array.from({ length: count }, (_, i) => i);
    const beyond = ids.filter((id) => id >= count);
    if (beyond.length > 0) {
      throw new PictalkError('config.invalid', `Expected PICTALK_DISCORD_SHARD_IDS below the shard count ${count} (Discord's recommendation), got ${beyond.join(', ')}`, { setting: 'PICTALK_DISCORD_SHARD_IDS' });
    }
  }
  const shardLine = (interaction: APIInteraction): string => {
    const here = shardOf(interaction.guild_id, count);
    return `Discord: this process runs gateway shard${ids.length === 1 ? '' : 's'} ${ids.join(', ')} of ${count}; this ${interaction.guild_id ? 'server' : 'conversation'} is on shard ${here}.`;
  };
  // `/pictalk` names the shards only where there are several to tell apart (PICTALK_DISCORD_SHARDS set).
  const handler = new InteractionHandler({ ...common, ...(options.shards ? { footer: shardLine } : {}) });
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    shards: ids,
    shardCount: count,
    ...(options.apiUrl ? { rest: { api: options.apiUrl } } : {}),
  });

  /** Acknowledge through the callback endpoint, then run the command; the placeholder's id comes back with it. */
  async function onInteraction(interaction: APIInteraction, shard: number): Promise<void> {
    const receivedAt = Date.now();
    const received = await handler.acknowledge(interaction, receivedAt);
    if (received.duplicate) return;
    const expected = shardOf(interaction.guild_id, count);
    if (expected !== shard) logger.warn('discord: an interaction arrived on another shard than its guild maps to', { interaction: interaction.id, shard, expected });
    let placeholderId: string | undefined;
    try {
      const answer = (await rest.post(Routes.interactionCallback(interaction.id, interaction.token), {
        body: received.response satisfies APIInteractionResponse, auth: false, query: new URLSearchParams({ with_response: 'true' }),
      })) as { resource?: { message?: { id: string; flags?: number } } } | undefined;
      const message = answer?.resource?.message;
      if (message && LEAVES_PLACEHOLDER.has(received.response.type) && !((message.flags ?? 0) & MessageFlags.Ephemeral)) placeholderId = message.id;
    } catch (error) {
      received.abandon?.();
      logger.warn('discord: could not acknowledge an interaction in time; it is dropped', { interaction: interaction.id, error: String(error) });
      return;
    }
    await received.run?.(placeholderId);
  }

  let taking = true;
  client.on(Events.Raw, (packet: GatewayDispatchPayload, shard: number) => {
    if (!taking || packet.t !== GatewayDispatchEvents.InteractionCreate) return;
    const interaction = packet.d;
    onInteraction(interaction, shard).catch((error: unknown) =>
      logger.error('discord: an interaction failed', { interaction: interaction.id, error: String(error) }));
  });
  client.on(Events.Error, (error) => logger.error('discord: client error', { error: String(error) }));
  client.on(Events.ShardResume, (shard, replayed) => logger.info('discord: gateway session resumed', { shard, replayed }));
  client.on(Events.ShardDisconnect, (event, shard) => logger.warn('discord: gateway shard disconnected', { shard, code: event.code }));

  try {
    const ready = once(client, Events.ClientReady);
    await client.login(options.token);
    await ready;
    await register();
  } catch (error) {
    // A half-started client keeps its websocket and timers alive; nothing may outlive a failed start.
    await client.destroy();
    throw error;
  }
  logger.info('discord: ready', { user: client.user?.tag, shards: ids, shardCount: count });

  return {
    mode: 'gateway',
    shards: { ids, count },
    reconnect,
    async quiesce(timeoutMs) {
      taking = false;
      return handler.drain(timeoutMs);
    },
    async stop() {
      taking = false;
      client.removeAllListeners(Events.Raw);
      await client.destroy();
    },
  };
}
