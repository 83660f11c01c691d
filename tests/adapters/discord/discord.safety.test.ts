/**
 * The safety checker on Discord, end to end: the real discord.js client and adapter, the real bot/ (SQLite in memory)
 * with the fake inference core (whose images carry the checker's flags), against the fake Discord. `/safety` is a
 * moderator command; a flagged image is withheld, or in spoiler mode and an age-restricted channel (`channel.nsfw`)
 * uploaded with the `SPOILER_` prefix that makes Discord blur it.
 */
import { buildCommands } from '../../../adapters/discord/commands.js';
import type { ImagineResult } from '../../../inference/types.js';
import type { FakeDiscord, FakeInteraction, RestCall } from '../../fakes/discord/fake-discord.js';
import { OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { defaultResult } from '../../bot/helpers.js';
import { startRealBotDiscord, type RealBotDiscord } from './real-bot.harness.js';

let discord: RealBotDiscord;
let fake: FakeDiscord;
const lastReply = (interaction: FakeInteraction, route?: string) => discord.lastReply(interaction, route);

const sub = (name: string, options: unknown[] = []) => ({ name, type: OptionType.Subcommand, options }) as never;
const prompt = [{ name: 'prompt', type: OptionType.String, value: 'two cats' }, { name: 'count', type: OptionType.Integer, value: 2 }] as never[];
const uploaded = (call: RestCall): string[] => (call.body!.attachments as Array<{ filename: string }> | undefined ?? []).map((a) => a.filename);

beforeAll(async () => {
  discord = await startRealBotDiscord({ safetyChecker: true });
  ({ fake } = discord);
  // the model folder's checker flags the first image of every job
  discord.core.behaviour.imagine = (input) => {
    const result = defaultResult(input) as ImagineResult;
    return { ...result, images: result.images.map((image, i) => ({ ...image, nsfw: i === 0 })) };
  };
});

afterAll(async () => {
  await discord?.stop();
});

test('/safety is a moderator command with show and set (mode, optional channel)', () => {
  const safety = buildCommands().find((command) => command.name === 'safety') as {
    default_member_permissions: string; options: Array<{ name: string; options?: Array<{ name: string; type: number; required?: boolean; choices?: Array<{ value: string }> }> }>;
  };
  expect(safety.default_member_permissions).toBe('32');
  expect(safety.options.map((o) => o.name)).toEqual(['show', 'set']);
  expect(safety.options[1]!.options!.map((o) => [o.name, o.type, o.required ?? false])).toEqual([['mode', 3, true], ['channel', 7, false]]);
  expect(safety.options[1]!.options![0]!.choices!.map((c) => c.value)).toEqual(['withhold', 'spoiler']);
});

test('a flagged image is withheld and refunded; in spoiler mode it is a SPOILER_ upload, only in an age-restricted channel', async () => {
  const plain = await lastReply(fake.sendChatInput('imagine', prompt, fake.members.alice, undefined, { nsfw: true }));
  expect(uploaded(plain)).toEqual([expect.stringMatching(/^pictalk-.*-2\.png$/)]);
  expect(String(plain.body!.content)).toContain('1 of 2 images was withheld by the safety checker; the quota for it was refunded.');

  const denied = await lastReply(fake.sendChatInput('safety', [sub('set', [{ name: 'mode', type: OptionType.String, value: 'spoiler' }])], fake.members.alice));
  expect(String(denied.body!.content)).toBe('Only moderators can use `safety.set`.');
  const set = await lastReply(fake.sendChatInput('safety', [sub('set', [{ name: 'mode', type: OptionType.String, value: 'spoiler' }])], fake.members.mod));
  expect(String(set.body!.content)).toMatch(/^Images the safety checker flags are now sent as spoilers/);

  const notRestricted = await lastReply(fake.sendChatInput('imagine', prompt, fake.members.alice));
  expect(uploaded(notRestricted)).toEqual([expect.stringMatching(/^pictalk-.*-2\.png$/)]);
  const restricted = await lastReply(fake.sendChatInput('imagine', prompt, fake.members.alice, undefined, { nsfw: true }));
  expect(uploaded(restricted)).toEqual([expect.stringMatching(/^SPOILER_pictalk-.*-1\.png$/), expect.stringMatching(/^pictalk-.*-2\.png$/)]);
  expect(String(restricted.body!.content)).not.toContain('withheld');

  // a channel option sets that channel's own mode
  const channel = await lastReply(fake.sendChatInput('safety', [sub('set', [
    { name: 'mode', type: OptionType.String, value: 'withhold' }, { name: 'channel', type: OptionType.Channel, value: fake.channelId },
  ])], fake.members.mod));
  expect(String(channel.body!.content)).toBe(`Images the safety checker flags are now withheld, and their quota refunded, in channel ${fake.channelId}.`);
  const show = await lastReply(fake.sendChatInput('safety', [sub('show')], fake.members.mod));
  expect(String(show.body!.content)).toContain(`• channel ${fake.channelId}: withhold`);
  const status = await lastReply(fake.sendChatInput('pictalk', [], fake.members.alice));
  expect(String(status.body!.content)).toContain("Safety: the model's safety checker is on; flagged images are withheld and their quota refunded.");
});
