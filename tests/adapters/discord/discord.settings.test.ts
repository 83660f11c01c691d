/**
 * `/settings` end to end: the real discord.js client and adapter, the real bot/ (SQLite in memory) with the fake
 * inference core, against the fake Discord. Personal defaults reach `/imagine`; moderators' server limits hold; a
 * user's `private` setting makes the deferred reply ephemeral from the start (flag 64 on the callback).
 */
import { Bot } from '../../../bot/bot.js';
import type { SqliteStore } from '../../../bot/sqlite.store.js';
import { buildCommands } from '../../../adapters/discord/commands.js';
import { startDiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import { InteractionHandler, PRIVATE_LOOKUP_MS, type BotPort } from '../../../adapters/discord/interaction.handler.js';
import type { APIInteraction, REST } from 'discord.js';
import type { FakeDiscord, FakeInteraction } from '../../fakes/discord/fake-discord.js';
import { OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import type { FakeCore } from '../../bot/helpers.js';
import { silent, startRealBotDiscord, type RealBotDiscord } from './real-bot.harness.js';

const CALLBACK = 'POST /interactions/:id/:token/callback';
const FOLLOW_UP = 'POST /webhooks/:app/:token';

let discord: RealBotDiscord;
let fake: FakeDiscord;
let core: FakeCore;
let store: SqliteStore;
/** The reply after the deferral: the last edit or follow-up that is not a status line. */
const lastReply = (interaction: FakeInteraction, route?: string) => discord.lastReply(interaction, route);

const sub = (name: string, options: unknown[] = []) => ({ name, type: OptionType.Subcommand, options }) as never;
const server = (name: string, options: unknown[] = []) => ({ name: 'server', type: OptionType.SubcommandGroup, options: [sub(name, options)] }) as never;

beforeAll(async () => {
  discord = await startRealBotDiscord({ moderatorRole: true });
  ({ fake, core, store } = discord);
});

afterAll(async () => {
  await discord?.stop();
});

test('/settings is registered with show, set (a typed option per key), reset and the server group', () => {
  const settings = buildCommands().find((command) => command.name === 'settings') as { options: Array<{ name: string; type: number; options?: Array<{ name: string; type: number; min_value?: number; max_value?: number; options?: Array<{ name: string }> }> }> };
  expect(settings.options.map((o) => [o.name, o.type])).toEqual([['show', 1], ['set', 1], ['reset', 1], ['server', 2]]);
  const set = settings.options[1]!.options!;
  expect(set.map((o) => [o.name, o.type])).toEqual([
    ['steps', 4], ['guidance', 10], ['scheduler', 3], ['negative', 3], ['count', 4], ['strength', 10], ['voice', 5], ['private', 5],
  ]);
  expect(set[0]).toMatchObject({ min_value: 1, max_value: 50 });
  expect(set[5]).toMatchObject({ min_value: 0, max_value: 1 });
  const serverSet = settings.options[3]!.options!.find((o) => o.name === 'set')!;
  expect(serverSet.options!.map((o) => o.name)).toEqual(['steps', 'guidance', 'scheduler', 'negative', 'count', 'strength', 'voice', 'private', 'max_steps', 'max_count']);
  expect(fake.commandPuts[0]!.body.map((c) => c.name)).toContain('settings');
});

test('a member sets defaults with typed options; /imagine uses them; the reply is ephemeral', async () => {
  const set = fake.sendChatInput('settings', [sub('set', [
    { name: 'steps', type: OptionType.Integer, value: 12 }, { name: 'scheduler', type: OptionType.String, value: 'ddim' },
    { name: 'voice', type: OptionType.Boolean, value: false },
  ])], fake.members.bob);
  const answer = await lastReply(set);
  expect(fake.callsFor(set, CALLBACK)[0]!.body).toEqual({ type: 5, data: { flags: 64 } });
  expect(String(answer.body!.content)).toBe('`steps` is now 12 (not set before).\n`scheduler` is now "ddim" (not set before).\n`voice` is now off (not set before).');

  const before = core.of('imagine').length;
  const imagine = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a red fox' }], fake.members.bob);
  await lastReply(imagine);
  const job = core.of('imagine')[before]!;
  expect(job.input).toMatchObject({ kind: 'imagine', request: { prompt: 'a red fox', steps: 12, scheduler: 'ddim' } });

  const show = fake.sendChatInput('settings', [sub('show')], fake.members.bob);
  expect(String((await lastReply(show)).body!.content)).toContain('• `steps`: 12\n');
});

test('the server group: refused to a member, a moderator\'s maximum refuses a larger option with nothing charged', async () => {
  const denied = fake.sendChatInput('settings', [server('set', [{ name: 'max_steps', type: OptionType.Integer, value: 10 }])], fake.members.alice);
  expect(String((await lastReply(denied)).body!.content)).toBe('Only moderators can use `settings server set`.');

  const limit = fake.sendChatInput('settings', [server('set', [{ name: 'max_steps', type: OptionType.Integer, value: 10 }])], fake.members.mod);
  expect(String((await lastReply(limit)).body!.content)).toMatch(/^`max_steps` is now 10 \(not set before\)\./);
  expect((await store.listAudit(fake.guildId))[0]).toMatchObject({ action: 'settings.set', target: 'server max_steps', after: { value: 10 } });

  const before = core.of('imagine').length;
  const over = fake.sendChatInput('imagine', [
    { name: 'prompt', type: OptionType.String, value: 'a red fox' }, { name: 'steps', type: OptionType.Integer, value: 11 },
  ], fake.members.alice);
  const refusal = await lastReply(over, FOLLOW_UP);
  expect(refusal.body).toMatchObject({ content: "Expected `steps` to be at most 10 (this server's maximum), got `11` (number).", flags: 64 });
  expect(core.of('imagine')).toHaveLength(before);

  const reset = fake.sendChatInput('settings', [server('reset', [{ name: 'key', type: OptionType.String, value: 'max_steps' }])], fake.members.mod);
  expect(String((await lastReply(reset)).body!.content)).toBe('Reset server setting `max_steps`.');
});

test('private replies: the deferral is ephemeral from the start and the image comes only to the requester', async () => {
  const on = fake.sendChatInput('settings', [sub('set', [{ name: 'private', type: OptionType.Boolean, value: true }])], fake.members.roleMod);
  await lastReply(on);

  const mine = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a secret square' }], fake.members.roleMod);
  const final = await lastReply(mine);
  expect(fake.callsFor(mine, CALLBACK)[0]!.body).toEqual({ type: 5, data: { flags: 64 } });
  expect(final.files).toHaveLength(1);
  expect(fake.original(mine)!.flags! & 64).toBe(64);

  // someone else's /imagine stays public
  const theirs = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a public square' }], fake.members.alice);
  await lastReply(theirs);
  expect(fake.callsFor(theirs, CALLBACK)[0]!.body).toEqual({ type: 5, data: { flags: 0 } });
});

test('over HTTP interactions too: the endpoint\'s answer is the ephemeral deferral for a user with private replies', async () => {
  const bot = new Bot({ store, core, logger: silent, config: { moderatorRoleIds: [fake.moderatorRoleId], rateLimit: { capacity: 1000, windowMs: 1000 } } });
  const front = await startDiscordAdapter({
    token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, guildId: fake.guildId, logger: silent,
    http: { publicKey: fake.publicKeyHex, port: 0, host: '127.0.0.1' },
  });
  try {
    fake.useHttpEndpoints([`http://127.0.0.1:${front.port}/discord/interactions`]);
    const on = fake.sendChatInput('settings', [sub('set', [{ name: 'private', type: OptionType.Boolean, value: true }])], fake.members.bob);
    await lastReply(on);
    const mine = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a quiet circle' }], fake.members.bob);
    await lastReply(mine);
    expect(mine.response).toMatchObject({ type: 5, ephemeral: true, via: 'http' });
    expect(mine.response!.at - mine.dispatchedAt).toBeLessThan(3000);
    const theirs = fake.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a loud circle' }], fake.members.alice);
    await lastReply(theirs);
    expect(theirs.response).toMatchObject({ type: 5, ephemeral: false, via: 'http' });
  } finally {
    await front.stop();
  }
});

describe('the private-replies look-up before the deferral', () => {
  const interaction = (name: string, options: unknown[]): APIInteraction => ({
    id: String(1_000 + Math.floor(Math.random() * 1e9)), application_id: 'app', type: 2, token: 'token', version: 1, guild_id: 'g1', channel_id: 'c1',
    member: { user: { id: 'u1', username: 'u1' }, roles: [], permissions: '0' },
    data: { id: 'cmd', name, type: 1, options },
  }) as unknown as APIInteraction;
  const imagine = () => interaction('imagine', [{ name: 'prompt', type: OptionType.String, value: 'x' }]);
  const handler = (privateReplies: BotPort['privateReplies']) => new InteractionHandler({
    rest: {} as REST, applicationId: 'app', logger: silent, statusIntervalMs: 1000,
    bot: { handle: async () => undefined, ...(privateReplies ? { privateReplies } : {}) },
  });
  const flags = (received: { response: unknown }) => (received.response as { data?: { flags?: number } }).data?.flags;

  test('a store that answers late or fails leaves the deferral public, within the look-up budget', async () => {
    const started = Date.now();
    expect(flags(await handler(() => new Promise<boolean>(() => {})).acknowledge(imagine()))).toBe(0);
    expect(Date.now() - started).toBeLessThan(PRIVATE_LOOKUP_MS + 500);
    expect(flags(await handler(async () => { throw new Error('store down'); }).acknowledge(imagine()))).toBe(0);
    expect(flags(await handler(async () => true).acknowledge(imagine()))).toBe(64);
  });

  test('commands that are private anyway, or that the setting does not cover, are not looked up', async () => {
    const asked: string[] = [];
    const h = handler(async (actor) => { asked.push(actor.userId); return true; });
    expect(flags(await h.acknowledge(interaction('settings', [{ name: 'show', type: OptionType.Subcommand, options: [] }])))).toBe(64);
    expect(flags(await h.acknowledge(interaction('pictalk', [])))).toBe(64);
    expect(asked).toEqual([]);
    await h.acknowledge(imagine());
    expect(asked).toEqual(['u1']);
  });
});
