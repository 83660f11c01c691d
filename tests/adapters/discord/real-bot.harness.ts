/**
 * The setup of the Discord tests that run the real bot/: the real discord.js client and adapter, the real bot/ (SQLite
 * in memory) with the fake inference core of bot/'s tests, against the fake Discord (gateway mode).
 */
import { Bot } from '../../../bot/bot.js';
import { SqliteStore } from '../../../bot/sqlite.store.js';
import { startDiscordAdapter, type DiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import { FakeDiscord, type FakeInteraction, type RestCall } from '../../fakes/discord/fake-discord.js';
import { FakeCore } from '../../bot/helpers.js';

export const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';
export const silent = { info: () => {}, warn: () => {}, error: () => {} };

export interface RealBotDiscordOptions {
  /** Make the fake Discord's moderator role one of bot/'s moderator roles. */
  moderatorRole?: boolean;
  /** Tell bot/ the model folder has a safety checker. */
  safetyChecker?: boolean;
}

export interface RealBotDiscord {
  fake: FakeDiscord;
  core: FakeCore;
  store: SqliteStore;
  adapter: DiscordAdapter;
  /** bot/ replies exactly once: the last edit (or, by `route`, follow-up) after the deferral that is not a status line. */
  lastReply(interaction: FakeInteraction, route?: string): Promise<RestCall>;
  /** The adapter, then the fake Discord. */
  stop(): Promise<void>;
}

export async function startRealBotDiscord(options: RealBotDiscordOptions = {}): Promise<RealBotDiscord> {
  const fake = await FakeDiscord.start();
  const core = new FakeCore();
  const store = new SqliteStore(':memory:');
  const bot = new Bot({
    store, core, logger: silent, ...(options.safetyChecker ? { safetyChecker: true } : {}),
    config: { ...(options.moderatorRole ? { moderatorRoleIds: [fake.moderatorRoleId] } : {}), rateLimit: { capacity: 1000, windowMs: 1000 } },
  });
  let adapter: DiscordAdapter;
  try {
    adapter = await startDiscordAdapter({ token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, guildId: fake.guildId, logger: silent });
  } catch (error) {
    await fake.stop();
    throw error;
  }
  return {
    fake, core, store, adapter,
    lastReply: (interaction, route = EDIT) => fake.waitFor(() => {
      const calls = fake.callsFor(interaction, route).filter((c) => c.status === 200 && !String(c.body?.content ?? '').match(/^(⏳|🎨)/));
      return calls.length > 0 && calls.at(-1);
    }, 10_000, `the reply to ${interaction.id}`),
    async stop() {
      await adapter.stop();
      await fake.stop();
    },
  };
}
