/**
 * An interaction token works for 15 minutes. Replies of jobs that end later go into the channel as the bot's own
 * messages, addressed to the requester: the real discord.js client against the fake Discord, with short lifetimes.
 */
import { startDiscordAdapter, type DiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import type { Logger } from '../../../adapters/discord/discord.conversation.js';
import { FakeDiscord, type FakeInteraction, type RestCall } from '../../fakes/discord/fake-discord.js';
import { MessageFlag, OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { FAKE_OGG, FakeBot, solidPng, waitSettled } from './fake-bot.js';

const CHANNEL_POST = 'POST /channels/:channel/messages';
const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';

const logs: Array<{ level: string; message: string }> = [];
const logger: Logger = {
  info: (message) => logs.push({ level: 'info', message }),
  warn: (message) => logs.push({ level: 'warn', message }),
  error: (message) => logs.push({ level: 'error', message }),
};

let fake: FakeDiscord;
let bot: FakeBot;
let adapter: DiscordAdapter;

const settled = (interaction: FakeInteraction) => waitSettled(fake, bot, interaction);

const channelPostsSince = (at: number): RestCall[] => fake.calls.filter((c) => c.route === CHANNEL_POST && c.at >= at);

beforeAll(async () => {
  fake = await FakeDiscord.start({ tokenLifetimeMs: 1000 });
  bot = new FakeBot({ moderatorRoleIds: [] });
  adapter = await startDiscordAdapter({
    token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, guildId: fake.guildId, logger,
    statusIntervalMs: 100, tokenLifetimeMs: 1000,
  });
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.stop();
});

test('/imagine that ends after the token expired: the image, text and buttons arrive in the channel, mentioning the requester', async () => {
  bot.options = { moderatorRoleIds: [], steps: 8, stepMs: 200 };
  const started = Date.now();
  const interaction = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a late red square' }]);
  await settled(interaction);

  // status edits stopped before the token ran out (the adapter keeps a margin), and none was refused
  const edits = fake.callsFor(interaction, EDIT);
  expect(edits.length).toBeGreaterThan(0);
  for (const edit of edits) {
    expect(edit.status).toBe(200);
    expect(edit.at - interaction.dispatchedAt).toBeLessThan(1000);
  }
  // the deferred "thinking…" message, which nothing could edit any more, is gone
  const placeholder = fake.calls.find((c) => c.route === 'DELETE /channels/:channel/messages/:id' && c.at >= started);
  expect(placeholder?.status).toBe(204);
  expect(fake.original(interaction)).toBeUndefined();
  const [post, ...more] = channelPostsSince(started);
  expect(more).toHaveLength(0);
  expect(post!.status).toBe(200);
  const alice = fake.members.alice.user.id;
  expect(String(post!.body!.content)).toMatch(new RegExp(`^<@${alice}> \\*\\*a late red square\\*\\*`));
  expect(post!.body!.allowed_mentions).toEqual({ users: [alice] });
  expect(post!.files).toHaveLength(1);
  expect(post!.files[0]).toMatchObject({ name: 'pictalk-42.png', contentType: 'image/png' });
  expect(post!.files[0]!.data.equals(solidPng(8, [220, 30, 30]))).toBe(true);
  const message = [...fake.messages.values()].find((m) => m.content === post!.body!.content)!;
  expect(message.attachments[0]).toMatchObject({ filename: 'pictalk-42.png', description: 'An image generated from the prompt: a late red square' });
  expect(message.components).toHaveLength(1);
  // the public message ids reach bot/, so a later Delete button removes the channel message
  const jobId = `job-${bot.requests.findIndex((r) => r.id === interaction.id)}`;
  expect(bot.messageIds.get(jobId)).toEqual([message.id]);
  expect(logs.some((l) => l.message.includes('token expired'))).toBe(true);
}, 20_000);

test('a webhook call refused with "Invalid Webhook Token" falls back to the channel too, voice message included', async () => {
  fake.tokenLifetimeMs = 0;                                    // Discord ends the token before the adapter expects it
  const started = Date.now();
  const attachment = fake.hostFile('square.png', solidPng(4, [255, 0, 0]), 'image/png');
  const interaction = fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], fake.members.alice, {
    attachments: { [attachment.id]: attachment },
  });
  await settled(interaction);
  fake.tokenLifetimeMs = 1000;

  expect(fake.callsFor(interaction, EDIT).some((c) => c.status === 401)).toBe(true);
  const posts = channelPostsSince(started);
  expect(posts.map((p) => p.status)).toEqual([200, 200]);
  expect(String(posts[0]!.body!.content)).toBe(`<@${fake.members.alice.user.id}> A red square.`);
  const voice = posts[1]!;
  expect(voice.body!.flags).toBe(MessageFlag.IsVoiceMessage);
  expect(voice.files[0]).toMatchObject({ name: 'voice-message.ogg', contentType: 'audio/ogg' });
  expect(voice.files[0]!.data.equals(FAKE_OGG)).toBe(true);
  expect(voice.body!.attachments).toEqual([expect.objectContaining({ duration_secs: 1.25, waveform: expect.any(String) })]);
}, 20_000);
