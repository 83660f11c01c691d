/**
 * End to end: the real Bolt app (Socket Mode, then HTTP mode), through the adapter, against the fake Slack (Web API,
 * v2 uploads, private file downloads, response_url, Socket Mode), with a fake bot behind the adapter's port.
 */
import { startSlackAdapter, type Logger, type SlackAdapter } from '../../../adapters/slack/slack.adapter.js';
import { FakeSlack, type FakeMessage } from '../../fakes/slack/fake-slack.js';
import { sendSigned, solidPng } from '../../fakes/slack/fake-slack.payloads.js';
import { CAPTION_BYTE_LIMIT, FAKE_OGG, FakeBot, IMAGE } from './fake-bot.js';

const INTERVAL_MS = 1500;
const logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
const logger: Logger = {
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};

let fake: FakeSlack;

beforeAll(async () => {
  fake = await FakeSlack.start();
});

afterAll(async () => {
  await fake?.stop();
});

/** The app's messages posted after `since`, in a channel, top level only. */
const topLevel = (channel: string, since: number) =>
  fake.messages.filter((m) => m.channel === channel && m.user === fake.botUserId && !m.thread_ts && m.postedAt >= since);
const buttons = (message: FakeMessage) => ((message.edits.at(-1)?.blocks ?? message.blocks ?? []) as Array<{ type: string; elements?: Array<{ action_id: string; value: string; style?: string }> }>)
  .filter((b) => b.type === 'actions').flatMap((b) => b.elements ?? []);

describe('Socket Mode', () => {
  let bot: FakeBot;
  let adapter: SlackAdapter;

  const settled = (triggerOrEventId: string, timeoutMs = 15_000) =>
    fake.waitFor(() => bot.done.has(triggerOrEventId), timeoutMs, `the reply to ${triggerOrEventId}`);
  const ephemeralAfter = (since: number, text: string | RegExp) =>
    fake.waitFor(() => fake.ephemerals.find((e) => e.at >= since && (typeof text === 'string' ? e.text.includes(text) : text.test(e.text))), 10_000, `an ephemeral ${text}`);

  beforeAll(async () => {
    bot = new FakeBot();
    adapter = await startSlackAdapter({ botToken: fake.botToken, appToken: fake.appToken, apiUrl: fake.apiUrl, bot, logger, statusIntervalMs: INTERVAL_MS });
  });

  afterAll(async () => {
    await adapter?.stop();
  });

  beforeEach(() => {
    bot.options = { steps: 5, stepMs: 50 };
  });

  test('connects: auth.test with the bot token, apps.connections.open with the app token, one socket', () => {
    expect(adapter.mode).toBe('socket');
    expect(fake.callsOf('auth.test')[0]).toMatchObject({ token: fake.botToken, status: 200 });
    expect(fake.callsOf('apps.connections.open')[0]).toMatchObject({ token: fake.appToken, status: 200 });
    expect(fake.callsOf('apps.connections.open')[0]!.error).toBeUndefined();
    expect(fake.socket.open()).toHaveLength(1);
  });

  test('/imagine: acked at once, a throttled status message, then the PNG uploaded (v2) into its thread with alt text', async () => {
    bot.options = { steps: 12, stepMs: 150, holdMs: 1700 };
    const since = Date.now();
    const payload = fake.slashCommand('/imagine', 'a red fox &amp; a &lt;box&gt; --seed 7 --steps 12 --negative "blurry, dark"');
    const envelope = fake.socket.deliver('slash_commands', payload);
    await settled(payload.trigger_id!);

    expect(envelope.ack).toBeDefined();
    expect(envelope.ack!.latencyMs).toBeLessThan(3000);
    const request = bot.requests.find((r) => r.id === payload.trigger_id)!;
    expect(request.command).toEqual({ name: 'imagine', options: { prompt: 'a red fox & a <box>', seed: 7, steps: 12, negative: 'blurry, dark' } });
    expect(request.actor).toEqual({ platform: 'slack', userId: fake.users.alice.id, spaceId: fake.teamId, roleIds: [], platformModerator: false, displayName: 'alice' });
    expect(request.channelId).toBe(fake.channels.general.id);

    // One status message, top level, that became the anchor.
    const [status] = topLevel(fake.channels.general.id, since);
    expect(status).toBeDefined();
    expect(topLevel(fake.channels.general.id, since)).toHaveLength(1);
    expect(status!.original!.text).toBe('⏳ Queued — position 2');
    expect(buttons({ ...status!, edits: [], blocks: status!.original!.blocks })).toEqual([expect.objectContaining({ action_id: 'pictalk.cancel', value: 'job-0' })]);
    const statusEdits = status!.edits.slice(0, -1);
    const final = status!.edits.at(-1)!;
    // 14 states over ~2 s: throttling dropped most, never editing faster than the interval, ending on the latest state.
    expect(statusEdits.length).toBeGreaterThanOrEqual(1);
    expect(statusEdits.length + 1).toBeLessThan(bot.statuses.filter((s) => s.requestId === request.id).length);
    const times = [status!.postedAt, ...statusEdits.map((e) => e.at)];
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(INTERVAL_MS - 50);
    expect(statusEdits.at(-1)!.text).toBe('🎨 Step 12/12 · denoise');
    expect(final.text).toBe('✅ Done: the image is in the thread.');
    expect(buttons(status!)).toEqual([
      { type: 'button', action_id: 'pictalk.reroll', value: 'job-0', style: 'primary', text: { type: 'plain_text', text: 'Re-roll' } },
      { type: 'button', action_id: 'pictalk.delete', value: 'job-0', style: 'danger', text: { type: 'plain_text', text: 'Delete' } },
    ]);

    // The v2 upload: getUploadURLExternal (name, length, alt text), the bytes, then one completeUploadExternal.
    const [urlCall] = fake.callsOf('files.getUploadURLExternal').filter((c) => c.at >= since);
    expect(urlCall!.args).toMatchObject({ filename: 'pictalk-42.png', length: String(IMAGE.length), alt_text: 'An image generated from the prompt: a red fox & a <box>' });
    const completion = fake.completions.find((c) => c.at >= since)!;
    expect(completion).toMatchObject({ channel_id: fake.channels.general.id, thread_ts: status!.ts });
    expect(completion.initial_comment).toBe('*a red fox &amp; a &lt;box&gt;*\nseed 42 · 12 steps · guidance 7.5 · pndm');
    expect(completion.files).toEqual([{ id: expect.any(String), title: 'An image generated from the prompt: a red fox & a <box>' }]);
    const upload = fake.uploads.get(completion.files[0]!.id)!;
    expect(upload.data!.equals(IMAGE)).toBe(true);
    expect(fake.threadReplies(fake.channels.general.id, status!.ts)).toHaveLength(1);
    // Nothing touched the status message after the final edit, and the receipt names the anchor and the file.
    expect(fake.callsOf('chat.update').filter((c) => c.at > final.at)).toHaveLength(0);
    expect(bot.receipts.get(request.id)).toEqual({ messageIds: [`msg:${status!.channel}:${status!.ts}`, `file:${upload.id}`] });
  }, 20_000);

  test('/imagine: a live preview shows in the status message as a private file in an image block, deleted once replaced', async () => {
    const preview = solidPng(8, [40, 200, 90]);
    bot.options = { steps: 12, stepMs: 150, holdMs: 1700, preview };
    const since = Date.now();
    const payload = fake.slashCommand('/imagine', 'a green preview');
    fake.socket.deliver('slash_commands', payload);
    await settled(payload.trigger_id!);

    const [status] = topLevel(fake.channels.general.id, since);
    const shown = status!.edits.flatMap((edit) => (edit.blocks ?? []) as Array<{ type: string; slack_file?: { id: string } }>)
      .filter((block) => block.type === 'image').map((block) => block.slack_file!.id);
    expect(shown.length).toBeGreaterThanOrEqual(1);
    for (const id of shown) {
      const upload = fake.uploads.get(id)!;
      expect(upload).toMatchObject({ filename: 'preview.png', deleted: true });   // private, and gone once replaced
      expect(upload.shared?.channel_id).toBeUndefined();
      expect(upload.data!.equals(preview)).toBe(true);
    }
    // the reply: no image block left in the anchor, and the image itself in the thread as before
    expect(((status!.edits.at(-1)!.blocks ?? []) as Array<{ type: string }>).some((block) => block.type === 'image')).toBe(false);
    expect(fake.threadReplies(fake.channels.general.id, status!.ts)).toHaveLength(1);
  }, 20_000);

  test('the Delete button removes the anchor message and the uploaded file; another user may not', async () => {
    const payload = fake.slashCommand('/imagine', 'a cat');
    fake.socket.deliver('slash_commands', payload);
    await settled(payload.trigger_id!);
    const anchor = fake.messages.filter((m) => m.user === fake.botUserId && !m.thread_ts).at(-1)!;
    const fileId = bot.receipts.get(payload.trigger_id!)!.messageIds.find((id) => id.startsWith('file:'))!.slice(5);

    const since = Date.now();
    const stranger = fake.buttonPress(anchor, 'pictalk.delete', fake.users.bob);
    fake.socket.deliver('interactive', stranger);
    await ephemeralAfter(since, 'Only the requester or an admin can delete this.');
    expect(anchor.deleted).toBe(false);

    const press = fake.buttonPress(anchor, 'pictalk.delete', fake.users.alice);
    const envelope = fake.socket.deliver('interactive', press);
    await settled(press.trigger_id as string);
    expect(envelope.ack!.latencyMs).toBeLessThan(3000);
    expect(anchor.deleted).toBe(true);
    expect(fake.uploads.get(fileId)!.deleted).toBe(true);
    expect(bot.requests.find((r) => r.id === press.trigger_id)!.command).toEqual({ name: 'delete', jobId: expect.stringMatching(/^job-/) });
    await ephemeralAfter(since, 'Deleted.');
  });

  test('the Re-roll button starts a new job with its own status message and thread', async () => {
    const payload = fake.slashCommand('/imagine', 'a dog');
    fake.socket.deliver('slash_commands', payload);
    await settled(payload.trigger_id!);
    const anchor = fake.messages.filter((m) => m.user === fake.botUserId && !m.thread_ts).at(-1)!;
    const jobId = buttons(anchor).find((b) => b.action_id === 'pictalk.reroll')!.value;
    const since = Date.now();
    const press = fake.buttonPress(anchor, 'pictalk.reroll', fake.users.bob);
    fake.socket.deliver('interactive', press);
    await settled(press.trigger_id as string);
    const request = bot.requests.find((r) => r.id === press.trigger_id)!;
    expect(request.command).toEqual({ name: 'reroll', jobId });
    expect(request.actor.userId).toBe(fake.users.bob.id);
    const [fresh] = topLevel(fake.channels.general.id, since);
    expect(fresh!.ts).not.toBe(anchor.ts);
    expect(fake.completions.filter((c) => c.at >= since && c.thread_ts === fresh!.ts)).toHaveLength(1);
  });

  test('/imagine with an unknown flag: a clear ephemeral error through response_url, and bot/ never sees it', async () => {
    const since = Date.now();
    const before = bot.requests.length;
    const payload = fake.slashCommand('/imagine', 'a fox --sed 7');
    const envelope = fake.socket.deliver('slash_commands', payload);
    const answer = await ephemeralAfter(since, 'Unknown option');
    expect(answer.via).toBe('response_url');
    expect(answer.body).toMatchObject({ response_type: 'ephemeral' });
    expect(answer.text).toContain('`--sed`');
    expect(answer.text).toContain('--seed');
    expect(envelope.ack).toBeDefined();
    expect(bot.requests).toHaveLength(before);
  });

  test('/imagine in a channel the app is not in: the requester is told to invite it', async () => {
    const since = Date.now();
    const payload = fake.slashCommand('/imagine', 'a fox', fake.users.alice, fake.channels.outside);
    fake.socket.deliver('slash_commands', payload);
    const answer = await ephemeralAfter(since, 'Invite it first');
    expect(answer.via).toBe('response_url');
    expect(fake.callsOf('chat.postMessage').filter((c) => c.at >= since && c.error === 'not_in_channel').length).toBeGreaterThan(0);
  });

  test('a 429 on chat.update is survived: Bolt\'s WebClient waits Retry-After and the final edit still lands', async () => {
    bot.options = { steps: 3, stepMs: 50, holdMs: 200 };
    fake.rateLimit('chat.update', 1, 1);
    const since = Date.now();
    const payload = fake.slashCommand('/imagine', 'a slow snail');
    fake.socket.deliver('slash_commands', payload);
    await settled(payload.trigger_id!, 20_000);
    const updates = fake.callsOf('chat.update').filter((c) => c.at >= since);
    expect(updates[0]!.status).toBe(429);
    expect(updates.at(-1)).toMatchObject({ status: 200 });
    const anchor = topLevel(fake.channels.general.id, since)[0]!;
    expect(anchor.edits.at(-1)!.text).toBe('✅ Done: the image is in the thread.');
    expect(fake.completions.filter((c) => c.at >= since && c.thread_ts === anchor.ts)).toHaveLength(1);
  }, 25_000);

  test('"Caption image" shortcut: the caption as a thread reply and voice-message.ogg uploaded into the same thread', async () => {
    const file = fake.hostFile('square.png', solidPng(4, [255, 0, 0]));
    const image = fake.userMessage(fake.users.alice, fake.channels.general, 'look', [file]);
    const since = Date.now();
    const payload = fake.messageShortcut('caption_image', image);
    const envelope = fake.socket.deliver('interactive', payload);
    await settled(payload.trigger_id as string);
    expect(envelope.ack!.latencyMs).toBeLessThan(3000);

    const request = bot.requests.find((r) => r.id === payload.trigger_id)!;
    expect(request.command).toMatchObject({ name: 'caption', attachment: { name: 'square.png', contentType: 'image/png', size: file.size } });
    expect(fake.downloads.filter((d) => d.fileId === file.id)).toEqual([expect.objectContaining({ authorized: true })]);

    const replies = fake.threadReplies(fake.channels.general.id, image.ts);
    expect(replies).toHaveLength(2);
    const [text, voice] = replies as [FakeMessage, FakeMessage];
    expect(text.user).toBe(fake.botUserId);
    expect(text.edits.at(-1)?.text ?? text.text).toBe('A red square.');
    expect(buttons(text).map((b) => b.action_id)).toEqual(['pictalk.delete']);
    const completion = fake.completions.find((c) => c.at >= since)!;
    expect(completion).toMatchObject({ channel_id: fake.channels.general.id, thread_ts: image.ts });
    expect(completion.initial_comment).toBeUndefined();
    const upload = fake.uploads.get(completion.files[0]!.id)!;
    expect(upload.filename).toBe('voice-message.ogg');
    expect(upload.data!.equals(FAKE_OGG)).toBe(true);
    expect(voice.files).toEqual([upload.id]);
  });

  test('the shortcut on a non-image file gets a clear reply and starts nothing', async () => {
    const file = fake.hostFile('report.pdf', Buffer.from('%PDF-1.4 fake'));
    const message = fake.userMessage(fake.users.alice, fake.channels.general, 'the report', [file]);
    const since = Date.now();
    const before = bot.requests.length;
    fake.socket.deliver('interactive', fake.messageShortcut('caption_image', message));
    const answer = await ephemeralAfter(since, 'report.pdf');
    expect(answer.text).toContain('is not an image (application/pdf)');
    expect(bot.requests).toHaveLength(before);
    expect(fake.downloads.filter((d) => d.fileId === file.id)).toHaveLength(0);
  });

  test('oversized images: refused by the reported size before any download, or cut off mid-stream when the size lies', async () => {
    const big = Buffer.concat([solidPng(4, [0, 0, 255]), Buffer.alloc(CAPTION_BYTE_LIMIT * 4)]);
    const honest = fake.hostFile('honest.png', big);
    const since = Date.now();
    fake.socket.deliver('interactive', fake.messageShortcut('caption_image', fake.userMessage(fake.users.alice, fake.channels.general, '', [honest])));
    const refused = await ephemeralAfter(since, 'honest.png');
    expect(refused.text).toMatch(/at most 64\.0 KiB, got 256\.\d KiB/);
    expect(fake.downloads.filter((d) => d.fileId === honest.id)).toHaveLength(0);

    const liar = fake.hostFile('liar.png', big, { reportedSize: 1000, chunked: true });
    fake.socket.deliver('interactive', fake.messageShortcut('caption_image', fake.userMessage(fake.users.alice, fake.channels.general, '', [liar])));
    const cut = await ephemeralAfter(since, 'liar.png');
    expect(cut.text).toContain('more than that');
    const download = fake.downloads.find((d) => d.fileId === liar.id)!;
    expect(download.authorized).toBe(true);
    await fake.waitFor(() => download.closedEarly !== undefined, 5000, 'the aborted download to close');
    expect(download.bytesSent!).toBeLessThan(big.length);
  });

  /** Alice (no admin) sets a quota: bot/ refuses, and the refusal reaches her alone. */
  async function quotaSetByNonAdmin() {
    const since = Date.now();
    const denied = fake.slashCommand('/pictalk-quota', 'set <@U0BOB|bob> imagine 5', fake.users.alice);
    fake.socket.deliver('slash_commands', denied);
    await settled(denied.trigger_id!);
    return { denied, answer: await ephemeralAfter(since, 'Only workspace admins') };
  }

  test('a response_url that Slack no longer honours (30 minutes, 5 posts): the ephemeral answer comes by chat.postEphemeral', async () => {
    fake.responseUrlLifetimeMs = 0;
    try {
      const { denied, answer } = await quotaSetByNonAdmin();
      expect(answer.via).toBe('chat.postEphemeral');
      expect(answer).toMatchObject({ channel: denied.channel_id, user: fake.users.alice.id });
    } finally {
      fake.responseUrlLifetimeMs = 30 * 60_000;
    }
  });

  test('/pictalk-quota: a non-admin is denied; a workspace admin (users.info is_admin) gets through, looked up once', async () => {
    const since = Date.now();
    const { denied, answer } = await quotaSetByNonAdmin();
    expect(answer.via).toBe('response_url');
    expect(bot.requests.find((r) => r.id === denied.trigger_id)!.actor.platformModerator).toBe(false);

    for (let i = 0; i < 2; i++) {
      const allowed = fake.slashCommand('/pictalk-quota', i === 0 ? 'set <@U0BOB|bob> imagine 5' : 'show', fake.users.admin);
      fake.socket.deliver('slash_commands', allowed);
      await settled(allowed.trigger_id!);
      const request = bot.requests.find((r) => r.id === allowed.trigger_id)!;
      expect(request.actor.platformModerator).toBe(true);
      expect(request.command).toEqual(i === 0
        ? { name: 'quota.set', target: { kind: 'user', id: 'U0BOB' }, kind: 'imagine', limit: 5 }
        : { name: 'quota.show' });
    }
    expect(fake.callsOf('users.info').filter((c) => c.at >= since && c.args.user === fake.users.admin.id)).toHaveLength(1);

    const usage = fake.slashCommand('/pictalk-quota', 'set bob imagine lots', fake.users.admin);
    fake.socket.deliver('slash_commands', usage);
    expect((await ephemeralAfter(since, 'Usage: `/pictalk-quota')).text).toContain('Expected a user mention');
  });

  test('auto-caption: an image shared in an enabled channel is captioned in its thread; a Socket Mode retry starts nothing', async () => {
    const since = Date.now();
    const file = fake.hostFile('shared.png', solidPng(4, [0, 255, 0]));
    // Off by default: nothing happens.
    const quiet = fake.messageEvent(fake.userMessage(fake.users.alice, fake.channels.art, '', [file]), fake.channels.art);
    const quietEnvelope = fake.socket.deliver('events_api', quiet);
    await fake.waitFor(() => quietEnvelope.ack, 5000, 'the ack of the first event');

    const enable = fake.slashCommand('/pictalk-caption', 'on', fake.users.admin, fake.channels.art);
    fake.socket.deliver('slash_commands', enable);
    await settled(enable.trigger_id!);
    expect(bot.requests.find((r) => r.id === enable.trigger_id)!.command).toEqual({ name: 'autocaption.set', channelId: fake.channels.art.id, enabled: true });
    expect(bot.requests.some((r) => r.id === quiet.event_id)).toBe(false);

    const message = fake.userMessage(fake.users.bob, fake.channels.art, 'my drawing', [file]);
    const event = fake.messageEvent(message, fake.channels.art);
    const first = fake.socket.deliver('events_api', event);
    // Slack did not see the ack in time (it thinks): the same payload again, retry_attempt 1, before the job ended.
    const retry = fake.socket.redeliver(first, 1, 'timeout');
    await settled(event.event_id as string);
    await fake.waitFor(() => retry.ack, 5000, 'the ack of the retry');
    expect(first.ack!.latencyMs).toBeLessThan(3000);

    const requests = bot.requests.filter((r) => r.id === event.event_id);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.command).toMatchObject({ name: 'caption', attachment: { name: 'shared.png' } });
    expect(requests[0]!.actor.userId).toBe(fake.users.bob.id);
    const completions = fake.completions.filter((c) => c.at >= since && c.thread_ts === message.ts);
    expect(completions).toHaveLength(1);
    expect(fake.threadReplies(fake.channels.art.id, message.ts).map((m) => m.edits.at(-1)?.text ?? m.text)).toEqual(['A red square.', '']);
    expect(logs.some((l) => l.message.includes('repeated delivery was ignored') && l.fields?.retryNum === 1)).toBe(true);

    // A document shared in the same channel is not an image: no reply, no job.
    const doc = fake.messageEvent(fake.userMessage(fake.users.bob, fake.channels.art, '', [fake.hostFile('notes.txt', Buffer.from('hi'))]), fake.channels.art);
    const docEnvelope = fake.socket.deliver('events_api', doc);
    await fake.waitFor(() => docEnvelope.ack, 5000, 'the ack of the document event');
    expect(bot.requests.some((r) => r.id === doc.event_id)).toBe(false);
  });
});

describe('HTTP mode', () => {
  let bot: FakeBot;
  let adapter: SlackAdapter;
  let url: string;

  beforeAll(async () => {
    bot = new FakeBot({ steps: 3, stepMs: 30 });
    adapter = await startSlackAdapter({ botToken: fake.botToken, signingSecret: fake.signingSecret, port: 0, apiUrl: fake.apiUrl, bot, logger, statusIntervalMs: INTERVAL_MS });
    url = `http://127.0.0.1:${adapter.port}/slack/events`;
  });

  afterAll(async () => {
    await adapter?.stop();
  });

  test('a correctly signed /imagine is answered 200 at once and runs', async () => {
    expect(adapter.mode).toBe('http');
    const payload = fake.slashCommand('/imagine', 'a green tree');
    const response = await sendSigned(url, 'slash_commands', payload, { secret: fake.signingSecret });
    expect(response.status).toBe(200);
    expect(response.elapsedMs).toBeLessThan(3000);
    await fake.waitFor(() => bot.done.has(payload.trigger_id!), 10_000, 'the /imagine reply');
    expect(fake.completions.some((c) => c.initial_comment?.includes('a green tree'))).toBe(true);
  });

  test('a bad signature and a timestamp older than five minutes are rejected with 401 before anything runs', async () => {
    const before = bot.requests.length;
    const bad = await sendSigned(url, 'slash_commands', fake.slashCommand('/imagine', 'forged'), { secret: fake.signingSecret, badSignature: true });
    expect(bad.status).toBe(401);
    const old = await sendSigned(url, 'slash_commands', fake.slashCommand('/imagine', 'replayed'), {
      secret: fake.signingSecret, timestamp: Math.floor(Date.now() / 1000) - 6 * 60,
    });
    expect(old.status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bot.requests).toHaveLength(before);
  });

  test('an Events API retry (X-Slack-Retry-Num: 1) of an accepted event does not start a second job', async () => {
    bot.autoCaption.add(`${fake.teamId}/${fake.channels.general.id}`);
    const message = fake.userMessage(fake.users.alice, fake.channels.general, '', [fake.hostFile('http.png', solidPng(4, [9, 9, 9]))]);
    const event = fake.messageEvent(message, fake.channels.general);
    const first = await sendSigned(url, 'events_api', event, { secret: fake.signingSecret });
    const retry = await sendSigned(url, 'events_api', event, { secret: fake.signingSecret, retryNum: 1, retryReason: 'http_timeout' });
    expect([first.status, retry.status]).toEqual([200, 200]);
    await fake.waitFor(() => bot.done.has(event.event_id as string), 10_000, 'the caption');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bot.requests.filter((r) => r.id === event.event_id)).toHaveLength(1);
    expect(fake.completions.filter((c) => c.thread_ts === message.ts)).toHaveLength(1);
  });
});

test('a wrong bot token stops start-up with config.invalid naming what Slack answered', async () => {
  await expect(startSlackAdapter({ botToken: 'xoxb-wrong', appToken: fake.appToken, apiUrl: fake.apiUrl, bot: new FakeBot(), logger }))
    .rejects.toMatchObject({ code: 'config.invalid', message: expect.stringContaining('invalid_auth') });
});
