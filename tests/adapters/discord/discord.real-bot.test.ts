/**
 * The adapter wired to the real bot/ (SQLite in memory) with the fake inference core of bot/'s tests, against the
 * fake Discord: the contract between the two as it runs, receipts and the delete action included.
 */
import { type FakeDiscord, type FakeInteraction } from '../../fakes/discord/fake-discord.js';
import { OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { solidPng } from './fake-bot.js';
import { EDIT, startRealBotDiscord, type RealBotDiscord } from './real-bot.harness.js';

const FOLLOW_UP = 'POST /webhooks/:app/:token';
const DELETE_MESSAGE = 'DELETE /channels/:channel/messages/:id';

let discord: RealBotDiscord;
let fake: FakeDiscord;
const lastReply = (interaction: FakeInteraction, route?: string) => discord.lastReply(interaction, route);

beforeAll(async () => {
  discord = await startRealBotDiscord({ moderatorRole: true });
  ({ fake } = discord);
});

afterAll(async () => {
  await discord?.stop();
});

test('/imagine through bot/: the image with alt text and buttons; the requester\'s Delete removes the message', async () => {
  const job = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a blue circle' }, { name: 'seed', type: OptionType.Integer, value: 7 }]);
  const final = await lastReply(job);
  expect(final.files).toHaveLength(1);
  const [meta] = final.body!.attachments as Array<{ description: string }>;
  expect(meta!.description.length).toBeGreaterThan(0);
  const customIds = (final.body!.components as Array<{ components: Array<{ custom_id: string }> }>).flatMap((row) => row.components.map((b) => b.custom_id));
  const deleteId = customIds.find((id) => id.startsWith('delete:'));
  expect(deleteId).toBeDefined();
  const messageId = fake.original(job)!.id;

  const press = fake.sendButton(deleteId!, fake.original(job)!, fake.members.alice);
  const answer = await lastReply(press, FOLLOW_UP);
  expect(answer.body).toMatchObject({ content: 'Deleted.', flags: 64 });
  expect(fake.callsFor(press)[0]!.body).toEqual({ type: 6 });
  expect(fake.calls.filter((c) => c.route === DELETE_MESSAGE && c.path.endsWith(`/${messageId}`) && c.status === 204)).toHaveLength(1);
  expect(fake.messages.has(messageId)).toBe(false);
});

test('/caption through bot/: caption text, then a voice message', async () => {
  const attachment = fake.hostFile('square.png', solidPng(4, [255, 0, 0]), 'image/png');
  const interaction = fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], fake.members.alice, {
    attachments: { [attachment.id]: attachment },
  });
  const voice = await lastReply(interaction, FOLLOW_UP);
  expect(voice.body).toMatchObject({ flags: 8192, attachments: [expect.objectContaining({ filename: 'voice-message.ogg', duration_secs: expect.any(Number) })] });
  expect(voice.files[0]).toMatchObject({ contentType: 'audio/ogg' });
  expect(String(fake.callsFor(interaction, EDIT).at(-1)!.body!.content)).toMatch(/\.$/);
});

test('/caption of a text file through bot/: a clear ephemeral refusal', async () => {
  const attachment = fake.hostFile('notes.txt', Buffer.from('hello'), 'text/plain');
  const interaction = fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], fake.members.alice, {
    attachments: { [attachment.id]: attachment },
  });
  const notice = await lastReply(interaction, FOLLOW_UP);
  expect(notice.body).toMatchObject({ flags: 64 });
  expect(String(notice.body!.content)).toMatch(/notes\.txt.*is not an image/);
});

test('/quota show through bot/: denied to a plain member, allowed to the configured moderator role', async () => {
  const options = [{ name: 'show', type: OptionType.Subcommand, options: [] }];
  const denied = fake.sendChatInput('quota', options, fake.members.alice);
  const allowed = fake.sendChatInput('quota', options, fake.members.roleMod);
  const [no, yes] = await Promise.all([lastReply(denied), lastReply(allowed)]);
  expect(fake.callsFor(denied)[0]!.body).toEqual({ type: 5, data: { flags: 64 } });
  expect(String(no.body!.content)).toMatch(/moderator/i);
  expect(String(yes.body!.content)).not.toMatch(/Only moderators/i);
});
