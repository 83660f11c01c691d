/**
 * `/pictalk settings ...` end to end: the real Bolt app and adapter, the real bot/ (SQLite in memory) with the fake
 * inference core, against the fake Slack over Socket Mode. Defaults reach `/imagine`; workspace admins set limits;
 * a user's `private` setting keeps the status message out of the channel, answers with `chat.postEphemeral` and
 * sends the image into the user's direct message with the app.
 */
import type { SqliteStore } from '../../../bot/sqlite.store.js';
import type { FakeSlack } from '../../fakes/slack/fake-slack.js';
import type { FakeUser } from '../../fakes/slack/fake-slack.payloads.js';
import type { FakeCore, FakeJob } from '../../bot/helpers.js';
import { startRealBotSlack, type RealBotSlack } from './real-bot.harness.js';

let slack: RealBotSlack;
let fake: FakeSlack;
let core: FakeCore;
let store: SqliteStore;
const ephemeral = (since: number, text: string) => slack.ephemeral(since, text);
/** `/pictalk <text>` from `user`, and the ephemeral answer since `since` that contains `answer`. */
const pictalk = (since: number, text: string, user: FakeUser | undefined, answer: string) => {
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk', text, user));
  return ephemeral(since, answer);
};

beforeAll(async () => {
  slack = await startRealBotSlack();
  ({ fake, core, store } = slack);
});

afterAll(async () => {
  await slack?.stop();
});

test('/pictalk alone is still the status; a typo in it gets the usage, ephemerally', async () => {
  const since = Date.now();
  await pictalk(since, '', undefined, 'Today you have used');
  const usage = await pictalk(since, 'setings', undefined, 'Usage: `/pictalk`');
  expect(usage.text).toMatch(/^⚠️ Expected nothing, `status` or `settings \.\.\.`/);
});

test('a member sets a default negative prompt and steps; /imagine uses them', async () => {
  const since = Date.now();
  await pictalk(since, 'settings set negative blurry &amp; dark', fake.users.bob, '`negative` is now "blurry &amp; dark"');
  await pictalk(since, 'settings set steps 12', fake.users.bob, '`steps` is now 12');
  const refused = await pictalk(since, 'settings set steps 99', fake.users.bob, 'Expected `steps`');
  expect(refused.text).toBe('⚠️ Expected `steps` to be an integer from 1 to 50, got `99` (number).');

  const before = core.of('imagine').length;
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'a red fox --seed 3', fake.users.bob));
  await fake.waitFor(() => fake.completions.find((c) => c.at >= since), 10_000, 'the upload');
  expect(core.of('imagine')[before]!.input).toMatchObject({ kind: 'imagine', request: { prompt: 'a red fox', seed: 3, steps: 12, negativePrompt: 'blurry & dark' } });
});

test('server limits: a member is refused, an admin sets one, and a larger option is refused with nothing run', async () => {
  const since = Date.now();
  await pictalk(since, 'settings server set max_count 1', fake.users.alice, 'Only moderators can use `settings server set`');
  await pictalk(since, 'settings server set max_count 1', fake.users.admin, '`max_count` is now 1 (not set before).');
  expect((await store.listAudit(fake.teamId))[0]).toMatchObject({ action: 'settings.set', target: 'server max_count', actorId: fake.users.admin.id });

  const before = core.of('imagine').length;
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'two cats --count 2', fake.users.alice));
  const refused = await ephemeral(since, "this server's maximum");
  expect(refused.text).toBe("⚠️ Expected `count` to be at most 1 (this server's maximum), got `2` (number).");
  expect(core.of('imagine')).toHaveLength(before);
});

/**
 * The owner, with private replies on, sends `/imagine <text>`; the job is held in the fake core and has reported step 1
 * of 2. Returns the job and how many messages the channel had before.
 */
async function privateImagine(since: number, text: string): Promise<{ job: FakeJob; publicBefore: number }> {
  await pictalk(since, 'settings set private on', fake.users.owner, '`private` is now on');
  const publicBefore = fake.messages.filter((m) => m.channel === fake.channels.general.id).length;
  core.manual = ['imagine'];
  const before = core.of('imagine').length;
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', text, fake.users.owner));
  const job = (await core.waitForJobs(before + 1, 'imagine')).at(-1)!;
  job.emit('progress', { stage: 'denoise', step: 1, total: 2 });
  return { job, publicBefore };
}

test('private replies: no public status, the text ephemerally, the image in the direct message', async () => {
  const since = Date.now();
  const user = fake.users.owner;
  // progress while it runs: nothing posted in the channel
  const { job, publicBefore } = await privateImagine(since, 'a secret square --seed 9');
  await new Promise((resolve) => setTimeout(resolve, 400));
  core.manual = false;
  job.resolve();

  const note = await ephemeral(since, 'the result is in your direct messages');
  expect(note.user ?? user.id).toBe(user.id);
  const dm = fake.directMessages.get(user.id)!;
  const completion = await fake.waitFor(() => fake.completions.find((c) => c.at >= since && c.channel_id === dm.id), 10_000, 'the upload into the DM');
  expect(completion.initial_comment).toContain('seed 9');
  expect(fake.messages.filter((m) => m.channel === fake.channels.general.id)).toHaveLength(publicBefore);
  expect(fake.completions.filter((c) => c.at >= since && c.channel_id === fake.channels.general.id)).toEqual([]);
});

test('private replies: a job that takes a while gets one ephemeral note with its state, before the reply', async () => {
  const since = Date.now();
  const user = fake.users.owner;
  const { job, publicBefore } = await privateImagine(since, 'a slow secret circle --seed 4');
  // the harness's status interval is 200 ms: the note comes about 400 ms after the first state, with the latest one
  const note = await ephemeral(since, 'only you will see the result');
  expect(note.text).toContain('Step 1/2 · denoise');
  expect(note.via === 'response_url' || note.user === user.id).toBe(true);
  job.emit('progress', { stage: 'denoise', step: 2, total: 2 });
  await new Promise((resolve) => setTimeout(resolve, 700));
  core.manual = false;
  job.resolve();

  const done = await ephemeral(since, 'the result is in your direct messages');
  expect(done.at).toBeGreaterThanOrEqual(note.at);
  // one note, however long the job ran, and nothing in the channel
  expect(fake.ephemerals.filter((e) => e.at >= since && e.text.includes('only you will see the result'))).toHaveLength(1);
  expect(fake.messages.filter((m) => m.channel === fake.channels.general.id)).toHaveLength(publicBefore);
});

test('private replies: a job done at once gets no note, only its reply', async () => {
  const since = Date.now();
  const user = fake.users.owner;
  await pictalk(since, 'settings set private on', user, '`private` is now on');
  const sent = Date.now();
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'a quick secret star --seed 5', user));
  const done = await ephemeral(since, 'the result is in your direct messages');
  await new Promise((resolve) => setTimeout(resolve, 600));
  const notes = fake.ephemerals.filter((e) => e.at >= since && e.text.includes('only you will see the result'));
  // the note is due 400 ms after the first state; a machine so busy that the whole job took longer may send it
  if (done.at - sent < 350) expect(notes).toEqual([]);
  else expect(notes.length).toBeLessThanOrEqual(1);
});
