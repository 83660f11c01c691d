/**
 * Image-to-image on Discord, end to end: the real discord.js client through the adapter against the fake Discord,
 * with a fake bot behind the port. `/imagine` carries an optional picture and strength; the Vary button under an
 * image sends `vary` for that image and answers publicly, as Reroll does.
 */
import { startDiscordAdapter, type DiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import { renderButtons } from '../../../adapters/discord/discord.conversation.js';
import type { Logger } from '../../../adapters/discord/discord.conversation.js';
import type { ImagineOptions } from '../../../bot/types.js';
import { FakeDiscord, type FakeInteraction } from '../../fakes/discord/fake-discord.js';
import { OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { FakeBot, solidPng, waitSettled } from './fake-bot.js';

const CALLBACK = 'POST /interactions/:id/:token/callback';
const FOLLOW_UP = 'POST /webhooks/:app/:token';
const logger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

let fake: FakeDiscord;
let bot: FakeBot;
let adapter: DiscordAdapter;

const settled = (interaction: FakeInteraction) => waitSettled(fake, bot, interaction);

beforeAll(async () => {
  fake = await FakeDiscord.start();
  bot = new FakeBot({ moderatorRoleIds: [] });
  adapter = await startDiscordAdapter({ token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, guildId: fake.guildId, logger });
});

afterAll(async () => {
  await adapter?.stop();
  await fake?.stop();
});

beforeEach(() => {
  bot.options = { moderatorRoleIds: [fake.moderatorRoleId], steps: 3, stepMs: 50 };
});

test('/imagine with an image attachment and a strength hands bot/ the picture, downloadable, and the strength', async () => {
  const picture = solidPng(8, [20, 200, 40]);
  const attachment = fake.hostFile('start.png', picture, 'image/png');
  const job = fake.sendChatInput('imagine', [
    { name: 'prompt', type: OptionType.String, value: 'a green square' },
    { name: 'image', type: OptionType.Attachment, value: attachment.id },
    { name: 'strength', type: OptionType.Number, value: 0.4 },
  ], fake.members.alice, { attachments: { [attachment.id]: attachment } });
  await settled(job);
  const command = bot.requests.find((r) => r.id === job.id)!.command;
  expect(command.name).toBe('imagine');
  const options = (command as { options: ImagineOptions }).options;
  expect(options).toMatchObject({ prompt: 'a green square', strength: 0.4, image: { name: 'start.png', contentType: 'image/png' } });
  expect((await options.image!.fetch(1_000_000)).equals(picture)).toBe(true);
  // without a picture, no image option reaches bot/
  const plain = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a plain one' }]);
  await settled(plain);
  const plainOptions = (bot.requests.find((r) => r.id === plain.id)!.command as { options: ImagineOptions }).options;
  expect(plainOptions.image).toBeUndefined();
  expect(plainOptions.strength).toBeUndefined();
}, 20_000);

test('a Vary button per image: custom ids `vary:<job>#<n>`, all different, rows of at most five', () => {
  const rows = renderButtons([
    { action: 'reroll', jobId: 'jA', label: 'Reroll', style: 'primary' },
    ...[1, 2, 3, 4].map((index) => ({ action: 'vary' as const, jobId: 'jA', index, label: `Vary ${index}`, style: 'secondary' as const })),
    { action: 'delete', jobId: 'jA', label: 'Delete', style: 'danger' },
  ]);
  expect(rows.map((row) => row.components.map((button) => button.custom_id))).toEqual([
    ['reroll:jA', 'vary:jA#1', 'vary:jA#2', 'vary:jA#3', 'vary:jA#4'],
    ['delete:jA'],
  ]);
});

test('pressing Vary sends `vary` for that image and answers with a public follow-up, as Reroll does', async () => {
  const job = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'vary me' }]);
  await settled(job);
  const jobId = `job-${bot.requests.findIndex((r) => r.id === job.id)}`;
  const press = fake.sendButton(`vary:${jobId}#1`, fake.original(job)!);
  await settled(press);
  expect(bot.requests.find((r) => r.id === press.id)!.command).toEqual({ name: 'vary', jobId, index: 1 });
  expect(fake.callsFor(press, CALLBACK)[0]!.body).toEqual({ type: 6 });
  const followUps = fake.callsFor(press, FOLLOW_UP);
  expect(followUps).toHaveLength(1);
  expect((followUps[0]!.body as { flags?: number }).flags ?? 0).toBe(0);       // not ephemeral
  // a custom id pictalk did not make does nothing in bot/
  const before = bot.requests.length;
  const stray = fake.sendButton(`vary:${jobId}#x`, fake.original(job)!);
  await fake.waitFor(() => fake.callsFor(stray, CALLBACK).length > 0, 10_000, 'the answer to a stray button');
  expect(bot.requests.length).toBe(before);
}, 20_000);
