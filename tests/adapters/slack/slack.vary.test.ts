/**
 * The Vary button on Slack, end to end: the real Bolt app (Socket Mode) through the adapter against the fake Slack,
 * with a fake bot behind the port. One button per image, each with its own action id (Block Kit refuses two equal
 * action ids in one block); a press sends `vary` for that image and the new job gets its own message and thread.
 */
import { startSlackAdapter, type Logger, type SlackAdapter } from '../../../adapters/slack/slack.adapter.js';
import { FakeSlack, type FakeMessage } from '../../fakes/slack/fake-slack.js';
import { FakeBot } from './fake-bot.js';

const logger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
let fake: FakeSlack;
let bot: FakeBot;
let adapter: SlackAdapter;

const buttons = (message: FakeMessage) => ((message.edits.at(-1)?.blocks ?? message.blocks ?? []) as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>)
  .filter((b) => b.type === 'actions').flatMap((b) => b.elements ?? []);
const settled = (id: string) => fake.waitFor(() => bot.done.has(id), 15_000, `the reply to ${id}`);

beforeAll(async () => {
  fake = await FakeSlack.start();
  bot = new FakeBot({ steps: 3, stepMs: 30, vary: 2 });
  adapter = await startSlackAdapter({ botToken: fake.botToken, appToken: fake.appToken, apiUrl: fake.apiUrl, bot, logger, statusIntervalMs: 1500 });
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.stop();
});

test('each image\'s Vary button has its own action id; a press sends `vary` for that image, answered in a new thread', async () => {
  const payload = fake.slashCommand('/imagine', 'two dogs');
  fake.socket.deliver('slash_commands', payload);
  await settled(payload.trigger_id!);
  const anchor = fake.messages.filter((m) => m.user === fake.botUserId && !m.thread_ts).at(-1)!;
  const jobId = buttons(anchor).find((b) => b.action_id === 'pictalk.reroll')!.value;
  expect(buttons(anchor).map((b) => [b.action_id, b.value])).toEqual([
    ['pictalk.reroll', jobId], ['pictalk.vary.1', `${jobId}#1`], ['pictalk.vary.2', `${jobId}#2`], ['pictalk.delete', jobId],
  ]);
  const since = Date.now();
  const press = fake.buttonPress(anchor, 'pictalk.vary.2', fake.users.bob);
  fake.socket.deliver('interactive', press);
  await settled(press.trigger_id as string);
  const request = bot.requests.find((r) => r.id === press.trigger_id)!;
  expect(request.command).toEqual({ name: 'vary', jobId, index: 2 });
  expect(request.actor.userId).toBe(fake.users.bob.id);
  const fresh = fake.messages.filter((m) => m.user === fake.botUserId && !m.thread_ts && m.postedAt >= since);
  expect(fresh).toHaveLength(1);
  expect(fake.completions.filter((c) => c.at >= since && c.thread_ts === fresh[0]!.ts)).toHaveLength(1);
}, 30_000);
