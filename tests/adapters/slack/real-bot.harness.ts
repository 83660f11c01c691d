/**
 * The setup of the Slack tests that run the real bot/: the real Bolt app and adapter, the real bot/ (SQLite in memory)
 * with the fake inference core of bot/'s tests, against the fake Slack over Socket Mode.
 */
import { Bot } from '../../../bot/bot.js';
import { SqliteStore } from '../../../bot/sqlite.store.js';
import { startSlackAdapter, type SlackAdapter } from '../../../adapters/slack/slack.adapter.js';
import { FakeSlack } from '../../fakes/slack/fake-slack.js';
import { FakeCore } from '../../bot/helpers.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };

export interface RealBotSlack {
  fake: FakeSlack;
  core: FakeCore;
  store: SqliteStore;
  bot: Bot;
  adapter: SlackAdapter;
  /** The first ephemeral message since `since` whose text contains `text`. */
  ephemeral(since: number, text: string): Promise<FakeSlack['ephemerals'][number]>;
  /** The adapter, then the fake Slack. */
  stop(): Promise<void>;
}

export async function startRealBotSlack(): Promise<RealBotSlack> {
  const fake = await FakeSlack.start();
  const core = new FakeCore();
  const store = new SqliteStore(':memory:');
  const bot = new Bot({ store, core, logger: silent, config: { rateLimit: { capacity: 1000, windowMs: 1000 } } });
  let adapter: SlackAdapter;
  try {
    adapter = await startSlackAdapter({ botToken: fake.botToken, appToken: fake.appToken, apiUrl: fake.apiUrl, bot, logger: silent, statusIntervalMs: 200 });
  } catch (error) {
    await fake.stop();
    throw error;
  }
  return {
    fake, core, store, bot, adapter,
    ephemeral: (since, text) =>
      fake.waitFor(() => fake.ephemerals.find((e) => e.at >= since && e.text.includes(text)), 10_000, `an ephemeral "${text}"`),
    async stop() {
      await adapter.stop();
      await fake.stop();
    },
  };
}
