/**
 * A sharded gateway: the fake Discord runs two shards and routes each guild's events to shard
 * `(guild_id >> 22) % 2` (DMs to shard 0); two gateway fronts connect one shard each, as two processes would.
 */
import { startDiscordAdapter, shardOf, type DiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import { FakeDiscord, type FakeInteraction } from '../../fakes/discord/fake-discord.js';
import { OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { FakeBot } from './fake-bot.js';

const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const prompt = (value: string) => [{ name: 'prompt', type: OptionType.String, value }];

let fake: FakeDiscord;
const bots = [new FakeBot({ steps: 2, stepMs: 20 }), new FakeBot({ steps: 2, stepMs: 20 })];
const fronts: DiscordAdapter[] = [];
const guilds: Array<{ guildId: string; channelId: string }> = [];

const lastEdit = (interaction: FakeInteraction) => fake.callsFor(interaction, EDIT).at(-1);
async function answered(interaction: FakeInteraction): Promise<string> {
  const call = await fake.waitFor(() => {
    const edit = lastEdit(interaction);
    return edit && !/^(⏳|🎨)/.test(String(edit.body?.content ?? '')) && edit;
  }, 10_000, `the reply to ${interaction.id}`);
  return String(call.body?.content ?? '');
}

beforeAll(async () => {
  fake = await FakeDiscord.start({ shards: 2, maxConcurrency: 2 });
  guilds.push(fake.addGuild({ shard: 0 }), fake.addGuild({ shard: 0 }), fake.addGuild({ shard: 1 }), fake.addGuild({ shard: 1 }));
  for (const id of [0, 1]) {
    fronts.push(await startDiscordAdapter({
      token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot: bots[id]!, logger: silent, statusIntervalMs: 0,
      shards: { count: 2, ids: [id] }, registerCommands: id === 0,
    }));
  }
});

afterAll(async () => {
  for (const front of fronts) await front.stop();
  await fake?.stop();
});

test('the shard rule', () => {
  expect(shardOf('175928847299117063', 2)).toBe(Number((175928847299117063n >> 22n) % 2n));
  expect(shardOf(undefined, 4)).toBe(0);
  for (const guild of guilds) expect(shardOf(guild.guildId, 2)).toBe(fake.shardOf(guild.guildId));
});

test('each front identifies its own shard only', () => {
  expect(fronts.map((f) => f.shards)).toEqual([{ ids: [0], count: 2 }, { ids: [1], count: 2 }]);
  expect(fake.gateway.identifies.map((i) => i.shard).sort()).toEqual([[0, 2], [1, 2]]);
  expect(fake.gateway.connectedShards().sort()).toEqual([0, 1]);
});

test('every guild\'s commands reach the front of its shard and no other; DMs go to shard 0', async () => {
  const sent: Array<{ shard: number; interaction: FakeInteraction }> = [];
  for (let round = 0; round < 5; round += 1) {
    for (const guild of guilds) {
      sent.push({ shard: fake.shardOf(guild.guildId), interaction: fake.sendChatInput('imagine', prompt(`round ${round}`), fake.members.alice, undefined, { guildId: guild.guildId }) });
    }
  }
  sent.push({ shard: 0, interaction: fake.sendChatInput('imagine', prompt('in a DM'), fake.members.bob, undefined, { dm: true }) });
  await Promise.all(sent.map((s) => answered(s.interaction)));
  for (const { shard, interaction } of sent) {
    const [mine, other] = [bots[shard]!, bots[1 - shard]!];
    expect(mine.requests.filter((r) => r.id === interaction.id)).toHaveLength(1);
    expect(other.requests.some((r) => r.id === interaction.id)).toBe(false);
  }
  const dm = bots[0]!.requests.find((r) => r.actor.spaceId === `dm:${fake.members.bob.user.id}`);
  expect(dm).toBeDefined();
  expect(bots[0]!.requests.length + bots[1]!.requests.length).toBe(sent.length);
});

test('/pictalk shows the shards of the process that answered, and the shard of this server', async () => {
  const [on0, on1] = [guilds[0]!, guilds[2]!];
  const a = fake.sendChatInput('pictalk', [], fake.members.alice, undefined, { guildId: on0.guildId });
  const b = fake.sendChatInput('pictalk', [], fake.members.alice, undefined, { guildId: on1.guildId });
  expect(await answered(a)).toMatch(/gateway shard 0 of 2; this server is on shard 0\.$/);
  expect(await answered(b)).toMatch(/gateway shard 1 of 2; this server is on shard 1\.$/);
});

test('a dropped connection on one shard is resumed on that shard, and its guilds keep being answered', async () => {
  const resumes = fake.gateway.resumes.length;
  const identifies = fake.gateway.identifies.length;
  fake.gateway.disconnect(4000, 'fake: network blip', 1);
  // dispatched while shard 1 is away: Discord keeps it for the resumed session
  const missed = fake.sendChatInput('imagine', prompt('while away'), fake.members.alice, undefined, { guildId: guilds[2]!.guildId });
  await answered(missed);
  const resumed = fake.gateway.resumes.slice(resumes);
  expect(resumed.map((r) => r.shard)).toEqual([1]);
  expect(resumed[0]!.replayed).toBeGreaterThanOrEqual(1);
  expect(fake.gateway.identifies.length).toBe(identifies);
  expect(bots[1]!.requests.some((r) => r.id === missed.id)).toBe(true);
  expect(bots[0]!.requests.some((r) => r.id === missed.id)).toBe(false);
  const fine = fake.sendChatInput('imagine', prompt('shard 0 untouched'), fake.members.alice, undefined, { guildId: guilds[0]!.guildId });
  await answered(fine);
});

test('`auto` takes the count from GET /gateway/bot; shard ids beyond it stop start-up naming the setting', async () => {
  const other = await FakeDiscord.start({ shards: 3, maxConcurrency: 3 });
  try {
    const options = { token: other.token, applicationId: other.applicationId, apiUrl: other.apiUrl, bot: new FakeBot(), logger: silent, registerCommands: false };
    const auto = await startDiscordAdapter({ ...options, shards: { count: 'auto', ids: [2] } });
    expect(auto.shards).toEqual({ ids: [2], count: 3 });
    await auto.stop();
    await expect(startDiscordAdapter({ ...options, shards: { count: 'auto', ids: [3] } })).rejects.toMatchObject({
      code: 'config.invalid', message: expect.stringMatching(/PICTALK_DISCORD_SHARD_IDS below the shard count 3/),
    });
  } finally {
    await other.stop();
  }
});
