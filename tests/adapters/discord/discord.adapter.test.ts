/**
 * End to end: the real discord.js client, through the adapter, against the fake Discord (REST + gateway), with a
 * fake bot behind the adapter's port.
 */
import { startDiscordAdapter, type DiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import type { Logger } from '../../../adapters/discord/discord.conversation.js';
import { FakeDiscord, type FakeInteraction, type RestCall } from '../../fakes/discord/fake-discord.js';
import { MessageFlag, OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { CAPTION_BYTE_LIMIT, FAKE_OGG, FakeBot, solidPng, waitSettled } from './fake-bot.js';

const CALLBACK = 'POST /interactions/:id/:token/callback';
const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';
const FOLLOW_UP = 'POST /webhooks/:app/:token';
const DELETE_ORIGINAL = 'DELETE /webhooks/:app/:token/messages/@original';
const DELETE_MESSAGE = 'DELETE /channels/:channel/messages/:id';
const INTERVAL_MS = 1500;

const logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
const logger: Logger = {
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};

let fake: FakeDiscord;
let bot: FakeBot;
let adapter: DiscordAdapter;

const prompt = (value: string) => [{ name: 'prompt', type: OptionType.String, value }] as const;
const contentOf = (call: RestCall) => String(call.body?.content ?? '');

const settled = (interaction: FakeInteraction) => waitSettled(fake, bot, interaction);

/** `/caption` with one uploaded file, as Discord sends an ATTACHMENT option: an id plus `resolved.attachments`. */
function sendCaption(name: string, data: Buffer, contentType: string, reportedSize?: number): FakeInteraction {
  const attachment = fake.hostFile(name, data, contentType, reportedSize);
  return fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], fake.members.alice, {
    attachments: { [attachment.id]: attachment },
  });
}

beforeAll(async () => {
  fake = await FakeDiscord.start();
  bot = new FakeBot({ moderatorRoleIds: [] });
  bot.options.moderatorRoleIds = [fake.moderatorRoleId];
  adapter = await startDiscordAdapter({
    token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, guildId: fake.guildId, logger,
  });
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.stop();
});

beforeEach(() => {
  bot.options = { moderatorRoleIds: [fake.moderatorRoleId], steps: 10, stepMs: 100 };
});

test('registers every command by one bulk overwrite in the guild', () => {
  expect(fake.commandPuts).toHaveLength(1);
  const [put] = fake.commandPuts;
  expect(put!.guildId).toBe(fake.guildId);
  expect(put!.body.map((c) => c.name)).toEqual(['imagine', 'caption', 'Caption image', 'quota', 'blocklist', 'settings', 'safety', 'pictalk']);
  const quota = put!.body.find((c) => c.name === 'quota')!;
  expect(quota.default_member_permissions).toBe('32');
  expect(put!.body.find((c) => c.name === 'Caption image')).toMatchObject({ type: 3 });
});

test('/imagine: deferred within 3 s, throttled progress edits ending on the latest state, then PNG with alt text and buttons', async () => {
  bot.options = { ...bot.options, steps: 12, stepMs: 200, holdMs: 2000 };
  const interaction = fake.sendChatInput('imagine', [...prompt('a red square')]);
  await settled(interaction);

  const [callback] = fake.callsFor(interaction, CALLBACK);
  expect(callback!.status).toBe(200);                         // with_response: the placeholder comes back
  expect(callback!.body).toEqual({ type: 5, data: { flags: 0 } });
  expect(callback!.at - interaction.dispatchedAt).toBeLessThan(3000);

  const edits = fake.callsFor(interaction, EDIT);
  const statusEdits = edits.slice(0, -1);
  const final = edits.at(-1)!;
  // 14 states over ~2.6 s: throttling must have dropped most of them, never editing faster than the interval.
  expect(statusEdits.length).toBeGreaterThanOrEqual(2);
  expect(statusEdits.length).toBeLessThan(bot.statuses.filter((s) => s.jobId === 'job-' + bot.requests.findIndex((r) => r.id === interaction.id)).length);
  for (let i = 1; i < statusEdits.length; i++) expect(statusEdits[i]!.at - statusEdits[i - 1]!.at).toBeGreaterThanOrEqual(INTERVAL_MS - 50);
  expect(contentOf(statusEdits[0]!)).toBe('⏳ Queued: position 2.');
  // The last state reached the user before the reply (the bot held the reply back for longer than the interval).
  expect(contentOf(statusEdits.at(-1)!)).toBe('🎨 Working: denoise 12/12');

  // The final edit: text, the PNG as files[0] with its description, and the buttons; nothing after it.
  expect(final.status).toBe(200);
  expect(contentOf(final)).toContain('seed 42');
  expect(final.files).toHaveLength(1);
  expect(final.files[0]).toMatchObject({ field: 'files[0]', name: 'pictalk-42.png', contentType: 'image/png' });
  expect(final.files[0]!.data.equals(solidPng(8, [220, 30, 30]))).toBe(true);
  expect(final.body!.attachments).toEqual([expect.objectContaining({ id: '0', description: 'An image generated from the prompt: a red square' })]);
  const buttons = (final.body!.components as Array<{ components: Array<{ custom_id: string; style: number }> }>)[0]!.components;
  expect(buttons.map((b) => b.custom_id)).toEqual([expect.stringMatching(/^reroll:job-/), expect.stringMatching(/^delete:job-/)]);
  expect(fake.callsFor(interaction).at(-1)).toBe(final);

  const message = fake.original(interaction)!;
  expect(message.attachments[0]).toMatchObject({ filename: 'pictalk-42.png', content_type: 'image/png', width: 8, height: 8, description: 'An image generated from the prompt: a red square' });
  expect(message.flags! & MessageFlag.Loading).toBe(0);

  const request = bot.requests.find((r) => r.id === interaction.id)!;
  expect(request.command).toEqual({ name: 'imagine', options: expect.objectContaining({ prompt: 'a red square' }) });
  expect(request.actor).toEqual({
    platform: 'discord', userId: fake.members.alice.user.id, spaceId: fake.guildId, roleIds: [fake.artistRoleId],
    platformModerator: false, displayName: 'Alice',
  });
  expect(request.channelId).toBe(fake.channelId);
}, 20_000);

test('/imagine answered by another front of a cluster (a silent reply): no edit or follow-up after the progress, so that front\'s edit stays', async () => {
  bot.options = { ...bot.options, steps: 4, stepMs: 200, holdMs: 1500, answeredElsewhere: true };
  const interaction = fake.sendChatInput('imagine', [...prompt('answered elsewhere')]);
  await settled(interaction);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const calls = fake.callsFor(interaction);
  const edits = fake.callsFor(interaction, EDIT);
  expect(edits.length).toBeGreaterThanOrEqual(1);
  // the last call is the last progress edit: nothing replaced, deleted or followed up the original response
  expect(calls.at(-1)).toBe(edits.at(-1));
  expect(contentOf(edits.at(-1)!)).toBe('🎨 Working: denoise 4/4');
  expect(calls.every((call) => call.method !== 'DELETE' && !call.files?.length)).toBe(true);
}, 20_000);

test('/caption: the caption as text, then a voice message follow-up (flag 8192, one audio/ogg file with duration and waveform)', async () => {
  const interaction = sendCaption('square.png', solidPng(4, [255, 0, 0]), 'image/png');
  await settled(interaction);

  const calls = fake.callsFor(interaction).filter((c) => c.route !== CALLBACK);
  expect(calls.map((c) => c.route)).toEqual([EDIT, FOLLOW_UP]);
  expect(contentOf(calls[0]!)).toBe('A red square.');
  const voice = calls[1]!;
  expect(voice.status).toBe(200);
  expect(voice.body!.flags).toBe(8192);
  expect(voice.body!.content).toBeUndefined();
  expect(voice.files).toHaveLength(1);
  expect(voice.files[0]).toMatchObject({ field: 'files[0]', name: 'voice-message.ogg', contentType: 'audio/ogg' });
  expect(voice.files[0]!.data.equals(FAKE_OGG)).toBe(true);
  const [meta] = voice.body!.attachments as Array<{ id: string; filename: string; duration_secs: number; waveform: string }>;
  expect(meta).toMatchObject({ id: '0', filename: 'voice-message.ogg', duration_secs: 1.25 });
  expect(Buffer.from(meta!.waveform, 'base64')).toHaveLength(256);

  // What the fake stored is a voice message as clients see one.
  const stored = [...fake.messages.values()].find((m) => (m.flags ?? 0) & MessageFlag.IsVoiceMessage)!;
  expect(stored.attachments[0]).toMatchObject({ content_type: 'audio/ogg', duration_secs: 1.25 });
});

test('"Caption image" on a message captions its first image, and a message without one gets an ephemeral answer', async () => {
  const notes = fake.hostFile('notes.txt', Buffer.from('hello'), 'text/plain');
  const photo = fake.hostFile('photo.png', solidPng(4, [255, 0, 0]), 'image/png');
  const target = fake.userMessage(fake.members.bob, 'look', [notes, photo]);
  const interaction = fake.sendMessageCommand('Caption image', target);
  await settled(interaction);
  const request = bot.requests.find((r) => r.id === interaction.id)!;
  expect(request.command).toMatchObject({ name: 'caption', attachment: { name: 'photo.png', contentType: 'image/png' } });
  expect(contentOf(fake.callsFor(interaction, EDIT)[0]!)).toBe('A red square.');

  const bare = fake.sendMessageCommand('Caption image', fake.userMessage(fake.members.bob, 'no pictures here', []));
  const [answer] = await fake.waitFor(() => fake.callsFor(bare, CALLBACK).length > 0 && fake.callsFor(bare, CALLBACK));
  expect(answer!.body).toMatchObject({ type: 4, data: { content: 'That message has no image to caption.', flags: 64 } });
  expect(bot.requests.some((r) => r.id === bare.id)).toBe(false);
});

test('cancel button: a deferred update (the message stays), a private notice; the cancelled job\'s public placeholder becomes an ephemeral notice', async () => {
  bot.options = { ...bot.options, steps: 50, stepMs: 100 };
  const job = fake.sendChatInput('imagine', [...prompt('a long one')]);
  await fake.waitFor(() => fake.callsFor(job, EDIT).length > 0, 5000, 'a first status edit');
  const jobId = `job-${bot.requests.findIndex((r) => r.id === job.id)}`;
  const press = fake.sendButton(`cancel:${jobId}`, fake.original(job)!);
  await settled(press);
  await settled(job);

  expect(fake.callsFor(press, CALLBACK)[0]!.body).toEqual({ type: 6 });
  expect(fake.callsFor(press, EDIT)).toHaveLength(0);
  expect(fake.callsFor(press, FOLLOW_UP).at(-1)!.body).toMatchObject({ content: 'Cancelled.', flags: 64 });
  expect(bot.requests.find((r) => r.id === press.id)!.command).toEqual({ name: 'cancel', jobId });

  const after = fake.callsFor(job).filter((c) => c.at >= fake.callsFor(press, CALLBACK)[0]!.at);
  expect(after.map((c) => c.route)).toEqual(expect.arrayContaining([DELETE_ORIGINAL, FOLLOW_UP]));
  const notice = fake.callsFor(job, FOLLOW_UP).at(-1)!;
  expect(notice.body).toMatchObject({ content: 'Your job was cancelled.', flags: 64 });
  expect(fake.original(job)).toBeUndefined();
}, 20_000);

test('re-roll button: a deferred update leaves the pressed message alone; progress and the new image are one public follow-up, edited by id', async () => {
  bot.options = { ...bot.options, steps: 12, stepMs: 150, holdMs: 1600 };
  const job = fake.sendChatInput('imagine', [...prompt('again please')]);
  await settled(job);
  const original = fake.original(job)!;
  const jobId = `job-${bot.requests.findIndex((r) => r.id === job.id)}`;
  const press = fake.sendButton(`reroll:${jobId}`, original);
  await settled(press);

  expect(fake.callsFor(press, CALLBACK)[0]!.body).toEqual({ type: 6 });
  expect(fake.callsFor(press, EDIT)).toHaveLength(0);
  const [first, ...more] = fake.callsFor(press, FOLLOW_UP);
  expect(more).toHaveLength(0);
  expect(contentOf(first!)).toMatch(/^(⏳|🎨)/);
  const followUpId = (fake.calls.find((c) => c === first) && [...fake.messages.values()].find((m) => m.interaction_metadata?.id === press.id))!.id;
  const edits = fake.callsFor(press, 'PATCH /webhooks/:app/:token/messages/:id');
  expect(edits.length).toBeGreaterThan(0);
  expect(edits.every((c) => c.path.endsWith(`/messages/${followUpId}`))).toBe(true);
  expect(edits.at(-1)!.files).toHaveLength(1);
  expect(bot.messageIds.get(`job-${bot.requests.findIndex((r) => r.id === press.id)}`)).toEqual([followUpId]);
  expect(fake.messages.get(original.id)!.attachments).toEqual(original.attachments);
}, 20_000);

test('delete button: removes the job\'s messages when bot/ allows it, and only then', async () => {
  const job = fake.sendChatInput('imagine', [...prompt('to be deleted')]);
  await settled(job);
  const jobId = `job-${bot.requests.findIndex((r) => r.id === job.id)}`;
  const messageId = fake.original(job)!.id;
  expect(bot.messageIds.get(jobId)).toEqual([messageId]);

  const denied = fake.sendButton(`delete:${jobId}`, fake.original(job)!, fake.members.bob);
  await settled(denied);
  expect(fake.callsFor(denied, DELETE_MESSAGE)).toHaveLength(0);
  expect(fake.messages.has(messageId)).toBe(true);
  expect(fake.callsFor(denied, EDIT)).toHaveLength(0);
  expect(fake.callsFor(denied, FOLLOW_UP).at(-1)!.body).toMatchObject({ flags: 64, content: expect.stringMatching(/Only the requester or a moderator/) });

  const allowed = fake.sendButton(`delete:${jobId}`, fake.original(job)!, fake.members.alice);
  await settled(allowed);
  expect(fake.calls.filter((c) => c.route === DELETE_MESSAGE && c.path.endsWith(`/${messageId}`) && c.status === 204)).toHaveLength(1);
  expect(fake.messages.has(messageId)).toBe(false);
  expect(fake.callsFor(allowed, FOLLOW_UP).at(-1)!.body).toMatchObject({ content: 'Deleted.', flags: 64 });
}, 20_000);

test('a gateway disconnect mid-job: the client resumes, missed dispatches are replayed, and the job still gets its final edit', async () => {
  bot.options = { ...bot.options, steps: 15, stepMs: 100 };
  const identifies = fake.gateway.identifies.length;
  const job = fake.sendChatInput('imagine', [...prompt('through a disconnect')]);
  await fake.waitFor(() => fake.callsFor(job, CALLBACK).length > 0, 5000, 'the deferral');
  fake.gateway.disconnect(4000);
  // Dispatched while the client is away: Discord keeps it for the resumed session.
  const missed = fake.sendChatInput('pictalk', [], fake.members.bob);
  await settled(job);
  await settled(missed);

  expect(fake.gateway.identifies).toHaveLength(identifies);
  expect(fake.gateway.resumes.at(-1)).toMatchObject({ replayed: 1 });
  expect(fake.callsFor(job, EDIT).at(-1)!.files[0]).toMatchObject({ name: 'pictalk-42.png' });
  expect(fake.callsFor(missed, CALLBACK)[0]!.body).toEqual({ type: 5, data: { flags: 64 } });
  expect(contentOf(fake.callsFor(missed, EDIT).at(-1)!)).toMatch(/^Queue: /);
}, 20_000);

test('op 7 RECONNECT from the gateway: the client resumes the same session and keeps answering', async () => {
  const resumes = fake.gateway.resumes.length;
  const identifies = fake.gateway.identifies.length;
  fake.gateway.requestReconnect();
  await fake.waitFor(() => fake.gateway.resumes.length > resumes && fake.gateway.connected, 5000, 'the resume');
  const interaction = fake.sendChatInput('pictalk');
  await settled(interaction);
  expect(fake.gateway.identifies).toHaveLength(identifies);
});

test('a 429 with retry_after on an edit is waited out and retried; the final state is right', async () => {
  fake.rateLimitNext(EDIT, 1);
  const interaction = sendCaption('square.png', solidPng(4, [255, 0, 0]), 'image/png');
  await settled(interaction);
  const edits = fake.callsFor(interaction, EDIT);
  expect(edits.map((c) => c.status)).toEqual([429, 200]);
  expect(edits[1]!.at - edits[0]!.at).toBeGreaterThanOrEqual(950);
  expect(contentOf(edits[1]!)).toBe('A red square.');
  expect(fake.original(interaction)!.content).toBe('A red square.');
  expect(fake.callsFor(interaction, FOLLOW_UP)).toHaveLength(1);
}, 15_000);

test('/imagine: a live preview rides on the progress edits as an embedded attachment, and the reply replaces it', async () => {
  const preview = solidPng(8, [40, 200, 90]);
  bot.options = { ...bot.options, steps: 12, stepMs: 200, holdMs: 2000, preview };
  const interaction = fake.sendChatInput('imagine', [...prompt('a green preview')]);
  await settled(interaction);

  const edits = fake.callsFor(interaction, EDIT);
  const withPreview = edits.filter((c) => c.files.some((f) => f.name === 'preview.png'));
  expect(withPreview.length).toBeGreaterThanOrEqual(1);
  for (const edit of withPreview) {
    expect(edit.status).toBe(200);
    expect(edit.files).toHaveLength(1);
    expect(edit.files[0]!.data.equals(preview)).toBe(true);
    expect(edit.body!.embeds).toEqual([{ image: { url: 'attachment://preview.png', width: 8, height: 8 } }]);
  }
  // the reply: its own image only, no embed left pointing at the preview
  const final = edits.at(-1)!;
  expect(final.body).toMatchObject({ embeds: [] });
  const message = fake.original(interaction)!;
  expect(message.attachments.map((a) => a.filename)).toEqual(['pictalk-42.png']);
  expect(message.embeds).toEqual([]);
});

test('a 429 on a progress edit does not disturb the job: later edits and the final reply arrive', async () => {
  fake.rateLimitNext(EDIT, 1);
  const interaction = fake.sendChatInput('imagine', [...prompt('rate limited')]);
  await settled(interaction);
  const edits = fake.callsFor(interaction, EDIT);
  expect(edits[0]!.status).toBe(429);
  expect(edits.at(-1)).toMatchObject({ status: 200, files: [expect.objectContaining({ name: 'pictalk-42.png' })] });
  expect(logs.filter((l) => l.level === 'error')).toEqual([]);
}, 15_000);

describe('bad attachments get clear, ephemeral replies', () => {
  const ephemeralText = async (interaction: FakeInteraction): Promise<string> => {
    await settled(interaction);
    expect(fake.callsFor(interaction, DELETE_ORIGINAL)).toHaveLength(1);
    const [notice] = fake.callsFor(interaction, FOLLOW_UP);
    expect(notice!.body!.flags).toBe(64);
    return contentOf(notice!);
  };

  test('oversized by its reported size: refused before downloading', async () => {
    const text = await ephemeralText(sendCaption('huge.png', solidPng(200, [1, 2, 3]), 'image/png', 5 * CAPTION_BYTE_LIMIT));
    expect(text).toMatch(/at most 64\.0 KiB, got 320\.0 KiB/);
  });

  test('oversized while claiming to be small: the download is cut off at the cap', async () => {
    const big = Buffer.concat([solidPng(4, [1, 2, 3]), Buffer.alloc(2 * CAPTION_BYTE_LIMIT)]);
    const text = await ephemeralText(sendCaption('liar.png', big, 'image/png', 1000));
    expect(text).toMatch(/at most 64\.0 KiB/);
  });

  test('corrupt image', async () => {
    const text = await ephemeralText(sendCaption('broken.png', solidPng(16, [9, 9, 9]).subarray(0, 40), 'image/png'));
    expect(text).toMatch(/damaged/);
  });

  test('not an image', async () => {
    const text = await ephemeralText(sendCaption('notes.txt', Buffer.from('just some text, no pixels'), 'text/plain'));
    expect(text).toMatch(/Expected a PNG, JPEG, WebP or GIF image/);
  });
});

test('/quota: deferred ephemerally; denied to a plain member, allowed by Manage Server or the moderator role', async () => {
  const options = [{ name: 'show', type: OptionType.Subcommand, options: [] }];
  const plain = fake.sendChatInput('quota', options, fake.members.alice);
  const byPermission = fake.sendChatInput('quota', options, fake.members.mod);
  const byRole = fake.sendChatInput('quota', options, fake.members.roleMod);
  await Promise.all([settled(plain), settled(byPermission), settled(byRole)]);

  for (const interaction of [plain, byPermission, byRole]) expect(fake.callsFor(interaction, CALLBACK)[0]!.body).toEqual({ type: 5, data: { flags: 64 } });
  expect(contentOf(fake.callsFor(plain, EDIT).at(-1)!)).toMatch(/needs the Manage Server permission/);
  expect(fake.callsFor(plain, FOLLOW_UP)).toHaveLength(0);
  expect(contentOf(fake.callsFor(byPermission, EDIT).at(-1)!)).toBe('Done: quota.show.');
  expect(contentOf(fake.callsFor(byRole, EDIT).at(-1)!)).toBe('Done: quota.show.');

  const actor = (i: FakeInteraction) => bot.requests.find((r) => r.id === i.id)!.actor;
  expect(actor(plain)).toMatchObject({ platformModerator: false, roleIds: [fake.artistRoleId] });
  expect(actor(byPermission)).toMatchObject({ platformModerator: true, roleIds: [] });
  expect(actor(byRole)).toMatchObject({ platformModerator: false, roleIds: expect.arrayContaining([fake.moderatorRoleId, fake.artistRoleId]) });
});

test('/quota set role: subcommand group and options reach bot/ as a role target', async () => {
  const interaction = fake.sendChatInput('quota', [{
    name: 'set', type: OptionType.SubcommandGroup, options: [{
      name: 'role', type: OptionType.Subcommand, options: [
        { name: 'role', type: OptionType.Role, value: fake.artistRoleId },
        { name: 'kind', type: OptionType.String, value: 'imagine' },
        { name: 'limit', type: OptionType.Integer, value: 5 },
      ],
    }],
  }], fake.members.mod, {
    roles: { [fake.artistRoleId]: { id: fake.artistRoleId, name: 'artists', color: 0, colors: { primary_color: 0, secondary_color: null, tertiary_color: null }, hoist: false, icon: null, unicode_emoji: null, position: 1, permissions: '0', managed: false, mentionable: false, flags: 0 as never } },
  });
  await settled(interaction);
  expect(bot.requests.find((r) => r.id === interaction.id)!.command).toEqual({
    name: 'quota.set', target: { kind: 'role', id: fake.artistRoleId }, kind: 'imagine', limit: 5,
  });
});

test('the same interaction dispatched twice starts one job', async () => {
  const interaction = fake.sendChatInput('pictalk');
  fake.gateway.dispatch('INTERACTION_CREATE', interaction.payload);
  await settled(interaction);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(bot.requests.filter((r) => r.id === interaction.id)).toHaveLength(1);
  expect(fake.callsFor(interaction, CALLBACK)).toHaveLength(1);
});

test('an interaction that cannot be deferred in time (Discord says Unknown interaction) never reaches bot/', async () => {
  fake.responseDeadlineMs = 0;
  try {
    const interaction = fake.sendChatInput('imagine', [...prompt('too late')]);
    await fake.waitFor(() => fake.callsFor(interaction, CALLBACK).length > 0, 5000, 'the deferral attempt');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.callsFor(interaction, CALLBACK)[0]).toMatchObject({ status: 404 });
    expect(bot.requests.some((r) => r.id === interaction.id)).toBe(false);
    expect(logs.some((l) => l.level === 'warn' && l.fields?.interaction === interaction.id && /10062/.test(String(l.fields?.error)))).toBe(true);
  } finally {
    fake.responseDeadlineMs = 3000;
  }
});

test('files over the interaction\'s attachment_size_limit are left out with a note instead of failing the reply', async () => {
  fake.attachmentSizeLimit = 60; // bytes: the 8x8 PNG (74 bytes) and the voice message are over it
  try {
    const imagine = fake.sendChatInput('imagine', [...prompt('too big to upload')]);
    const caption = sendCaption('square.png', solidPng(4, [255, 0, 0]), 'image/png');
    await Promise.all([settled(imagine), settled(caption)]);
    const final = fake.callsFor(imagine, EDIT).at(-1)!;
    expect(final.status).toBe(200);
    expect(final.files).toHaveLength(0);
    expect(contentOf(final)).toMatch(/Image 1 \(74 B\) is over this server's upload limit of 60 B/);
    expect(fake.callsFor(caption, FOLLOW_UP)).toHaveLength(0);
    expect(contentOf(fake.callsFor(caption, EDIT).at(-1)!)).toMatch(/^A red square\.\nThe voice message .* is over this server's upload limit/);
  } finally {
    fake.attachmentSizeLimit = 10 * 1024 * 1024;
  }
});

test('settings are checked before anything connects', async () => {
  const base = { token: 't', applicationId: fake.applicationId, bot, logger };
  await expect(startDiscordAdapter({ ...base, applicationId: 'app' })).rejects.toThrow('Expected `applicationId` to be a snowflake (17 to 20 digits), got `"app"` (string)');
  await expect(startDiscordAdapter({ ...base, apiUrl: 'discord.com/api' })).rejects.toThrow(/Expected `apiUrl` to be an http\(s\) URL/);
  await expect(startDiscordAdapter({ ...base, statusIntervalMs: -5 })).rejects.toThrow(/statusIntervalMs/);
});

test('a wrong token fails the start with the API\'s 401 and leaves nothing running', async () => {
  const calls = fake.calls.length;
  await expect(startDiscordAdapter({ token: 'wrong', applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, logger })).rejects.toThrow(/invalid token/i);
  expect(fake.calls.slice(calls).map((c) => [c.route, c.status])).toEqual([['GET /gateway/bot', 401]]);
});
