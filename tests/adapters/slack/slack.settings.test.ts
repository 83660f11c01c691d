/**
 * `/pictalk settings ...` end to end: the real Bolt app and adapter, the real bot/ (SQLite in memory) with the fake
 * inference core, against the fake Slack over Socket Mode. Defaults reach `/imagine`; workspace admins set limits;
 * a user's `private` setting keeps the status message out of the channel, answers with `chat.postEphemeral` and
 * sends the image into the user's direct message with the app.
 */
import { Bot } from '../../../bot/bot.js';
import { SqliteStore } from '../../../bot/sqlite.store.js';
import { startSlackAdapter, type SlackAdapter } from '../../../adapters/slack/slack.adapter.js';
import { FakeSlack } from '../../fakes/slack/fake-slack.js';
import { FakeCore } from '../../bot/helpers.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };

let fake: FakeSlack;
let core: FakeCore;
let store: SqliteStore;
let adapter: SlackAdapter;

const ephemeral = (since: number, text: string) =>
  fake.waitFor(() => fake.ephemerals.find((e) => e.at >= since && e.text.includes(text)), 10_000, `an ephemeral "${text}"`);

beforeAll(async () => {
  fake = await FakeSlack.start();
  core = new FakeCore();
  store = new SqliteStore(':memory:');
  const bot = new Bot({ store, core, logger: silent, config: { rateLimit: { capacity: 1000, windowMs: 1000 } } });
  adapter = await startSlackAdapter({ botToken: fake.botToken, appToken: fake.appToken, apiUrl: fake.apiUrl, bot, logger: silent, statusIntervalMs: 200 });
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.stop();
});

test('/pictalk alone is still the status; a typo in it gets the usage, ephemerally', async () => {
  const since = Date.now();
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', ''));
  await ephemeral(since, 'Today you have used');
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'setings'));
  const usage = await ephemeral(since, 'Usage: `/pictalk`');
  expect(usage.text).toMatch(/^⚠️ Expected nothing, `status` or `settings \.\.\.`/);
});

test('a member sets a default negative prompt and steps; /imagine uses them', async () => {
  const since = Date.now();
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'settings set negative blurry &amp; dark', fake.users.bob));
  await ephemeral(since, '`negative` is now "blurry &amp; dark"');
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'settings set steps 12', fake.users.bob));
  await ephemeral(since, '`steps` is now 12');
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'settings set steps 99', fake.users.bob));
  const refused = await ephemeral(since, 'Expected `steps`');
  expect(refused.text).toBe('⚠️ Expected `steps` to be an integer from 1 to 50, got `99` (number).');

  const before = core.of('imagine').length;
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'a red fox --seed 3', fake.users.bob));
  await fake.waitFor(() => fake.completions.find((c) => c.at >= since), 10_000, 'the upload');
  expect(core.of('imagine')[before]!.input).toMatchObject({ kind: 'imagine', request: { prompt: 'a red fox', seed: 3, steps: 12, negativePrompt: 'blurry & dark' } });
});

test('server limits: a member is refused, an admin sets one, and a larger option is refused with nothing run', async () => {
  const since = Date.now();
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'settings server set max_count 1', fake.users.alice));
  await ephemeral(since, 'Only moderators can use `settings server set`');
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'settings server set max_count 1', fake.users.admin));
  await ephemeral(since, '`max_count` is now 1 (not set before).');
  expect((await store.listAudit(fake.teamId))[0]).toMatchObject({ action: 'settings.set', target: 'server max_count', actorId: fake.users.admin.id });

  const before = core.of('imagine').length;
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'two cats --count 2', fake.users.alice));
  const refused = await ephemeral(since, "this server's maximum");
  expect(refused.text).toBe("⚠️ Expected `count` to be at most 1 (this server's maximum), got `2` (number).");
  expect(core.of('imagine')).toHaveLength(before);
});

test('private replies: no public status, the text ephemerally, the image in the direct message', async () => {
  const since = Date.now();
  const user = fake.users.owner;
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', 'settings set private on', user));
  await ephemeral(since, '`private` is now on');
  const publicBefore = fake.messages.filter((m) => m.channel === fake.channels.general.id).length;

  core.manual = ['imagine'];
  const before = core.of('imagine').length;
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'a secret square --seed 9', user));
  const [job] = (await core.waitForJobs(before + 1, 'imagine')).slice(-1);
  // progress while it runs: nothing posted in the channel
  job!.emit('progress', { stage: 'denoise', step: 1, total: 2 });
  await new Promise((resolve) => setTimeout(resolve, 400));
  core.manual = false;
  job!.resolve();

  const note = await ephemeral(since, 'the result is in your direct messages');
  expect(note.user ?? user.id).toBe(user.id);
  const dm = fake.directMessages.get(user.id)!;
  const completion = await fake.waitFor(() => fake.completions.find((c) => c.at >= since && c.channel_id === dm.id), 10_000, 'the upload into the DM');
  expect(completion.initial_comment).toContain('seed 9');
  expect(fake.messages.filter((m) => m.channel === fake.channels.general.id)).toHaveLength(publicBefore);
  expect(fake.completions.filter((c) => c.at >= since && c.channel_id === fake.channels.general.id)).toEqual([]);
});
