/**
 * The Slack adapter wired to the real bot/ (SQLite in memory) with the fake inference core of bot/'s tests, against
 * the fake Slack over Socket Mode: receipts and the delete action, workspace admins as moderators, and auto-caption
 * switched on through bot/'s own setting, with a retried event that must not reach the core twice.
 */
import type { Bot } from '../../../bot/bot.js';
import type { FakeSlack } from '../../fakes/slack/fake-slack.js';
import { solidPng } from '../../fakes/slack/fake-slack.payloads.js';
import type { FakeCore } from '../../bot/helpers.js';
import { startRealBotSlack, type RealBotSlack } from './real-bot.harness.js';

let slack: RealBotSlack;
let fake: FakeSlack;
let core: FakeCore;
let bot: Bot;
const ephemeral = (since: number, text: string) => slack.ephemeral(since, text);

beforeAll(async () => {
  slack = await startRealBotSlack();
  ({ fake, core, bot } = slack);
});

afterAll(async () => {
  await slack?.stop();
});

test('/imagine through bot/: the image with alt text in the thread; the requester\'s Delete removes message and file', async () => {
  const since = Date.now();
  fake.socket.deliver('slash_commands', fake.slashCommand('/imagine', 'a blue circle --seed 7'));
  const completion = await fake.waitFor(() => fake.completions.find((c) => c.at >= since), 10_000, 'the upload');
  const upload = fake.uploads.get(completion.files[0]!.id)!;
  expect(upload.alt_text!.length).toBeGreaterThan(0);
  expect(completion.initial_comment).toContain('seed 7');
  const anchor = fake.message(completion.channel_id!, completion.thread_ts!)!;
  expect(core.of('imagine')).toHaveLength(1);
  expect(core.of('imagine')[0]!.input).toMatchObject({ kind: 'imagine', request: { prompt: 'a blue circle', seed: 7 } });

  // bot/ stores the receipt after finish resolves; the button is pressed once it is there.
  await fake.waitFor(() => anchor.edits.some((e) => e.text.startsWith('✅')), 5000, 'the final edit');
  await new Promise((resolve) => setTimeout(resolve, 100));
  fake.socket.deliver('interactive', fake.buttonPress(anchor, 'pictalk.delete', fake.users.alice));
  await ephemeral(since, 'Deleted.');
  expect(anchor.deleted).toBe(true);
  expect(upload.deleted).toBe(true);
});

test('/pictalk-quota: bot/ denies a member and accepts a workspace admin', async () => {
  const since = Date.now();
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk-quota', 'set default imagine 3', fake.users.bob));
  const denied = await ephemeral(since, 'quota.set');
  expect(denied.text).toMatch(/^⚠️ Only moderators/);
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk-quota', 'set default imagine 3', fake.users.owner));
  const allowed = await fake.waitFor(() => fake.ephemerals.find((e) => e.at >= since && e !== denied), 10_000, 'the admin\'s answer');
  expect(allowed.text).not.toContain('⚠️');
});

test('/pictalk-caption on, then a shared image is captioned with a voice file; its retry never reaches the core', async () => {
  const since = Date.now();
  // Earlier tests captioned generated images for their alt text: count from here.
  const [captions, speeches] = [core.of('caption').length, core.of('speak').length];
  fake.socket.deliver('slash_commands', fake.slashCommand('/pictalk-caption', 'on', fake.users.admin, fake.channels.art));
  await ephemeral(since, 'Auto-caption is now on');
  expect(await bot.isAutoCaptionChannel(fake.teamId, fake.channels.art.id)).toBe(true);

  const message = fake.userMessage(fake.users.alice, fake.channels.art, '', [fake.hostFile('photo.png', solidPng(4, [1, 2, 3]))]);
  const first = fake.socket.deliver('events_api', fake.messageEvent(message, fake.channels.art));
  const completion = await fake.waitFor(() => fake.completions.find((c) => c.thread_ts === message.ts), 10_000, 'the voice upload');
  fake.socket.redeliver(first, 1, 'timeout');
  await new Promise((resolve) => setTimeout(resolve, 300));

  expect(fake.uploads.get(completion.files[0]!.id)!.filename).toBe('voice-message.ogg');
  expect(core.of('caption')).toHaveLength(captions + 1);
  expect(core.of('speak')).toHaveLength(speeches + 1);
  expect(fake.completions.filter((c) => c.thread_ts === message.ts)).toHaveLength(1);
  const [text] = fake.threadReplies(fake.channels.art.id, message.ts);
  expect(text!.edits.at(-1)?.text ?? text!.text).toMatch(/^A drawing of/);
});

test('auto-caption stays silent on a picture the captioner cannot describe reliably: no reply in the thread, no note, no voice', async () => {
  const since = Date.now();
  await bot.handle({
    id: `autocaption-on-${since}`, actor: { platform: 'slack', userId: fake.users.admin.id, spaceId: fake.teamId, roleIds: [], platformModerator: true },
    channelId: fake.channels.art.id, command: { name: 'autocaption.set', channelId: fake.channels.art.id, enabled: true }, receivedAt: since,
  }, { status: () => undefined, finish: async () => undefined });
  const speeches = core.of('speak').length;
  core.behaviour.caption = () => ({ kind: 'caption', caption: 'A big red circle.', tokens: [], score: -0.3, inDomain: false, domainScore: 5, timingsMs: {} });
  try {
    const message = fake.userMessage(fake.users.bob, fake.channels.art, 'my holiday', [fake.hostFile('beach.jpg', solidPng(4, [200, 180, 90]))]);
    const event = fake.messageEvent(message, fake.channels.art);
    fake.socket.deliver('events_api', event);
    await fake.waitFor(() => core.of('caption').some((c) => c.owner.userId === fake.users.bob.id), 10_000, 'the caption job');
    await new Promise((resolve) => setTimeout(resolve, 800));
    // the status message came and went: nothing of pictalk's is left in the thread, nobody got a note
    const replies = fake.threadReplies(fake.channels.art.id, message.ts);
    expect(replies.length).toBeGreaterThan(0);
    expect(replies.filter((m) => !m.deleted)).toEqual([]);
    expect(fake.completions.filter((c) => c.thread_ts === message.ts)).toHaveLength(0);
    expect(fake.ephemerals.filter((e) => e.at >= since)).toHaveLength(0);
    expect(core.of('speak')).toHaveLength(speeches);
  } finally {
    delete core.behaviour.caption;
  }
});
