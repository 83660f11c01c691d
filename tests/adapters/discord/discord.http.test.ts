/**
 * HTTP interactions end to end: the fake Discord signs every interaction with its own Ed25519 key and spreads them
 * over two pictalk fronts as a load balancer would. Each front is the real adapter in HTTP mode with bot/ of its own;
 * the two share one store and one inference core, as two front processes share PostgreSQL and the cluster queue.
 */
import { Bot } from '../../../bot/bot.js';
import { SqliteStore } from '../../../bot/sqlite.store.js';
import { startDiscordAdapter, type DiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import { FakeDiscord, type FakeInteraction, type FakeMember, type RestCall } from '../../fakes/discord/fake-discord.js';
import { MessageFlag, OptionType } from '../../fakes/discord/fake-discord.payloads.js';
import { FakeCore, defaultResult, type FakeJob } from '../../bot/helpers.js';
import { solidPng } from './fake-bot.js';

const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';
const EDIT_BY_ID = 'PATCH /webhooks/:app/:token/messages/:id';
const FOLLOW_UP = 'POST /webhooks/:app/:token';
const CHANNEL_POST = 'POST /channels/:channel/messages';
const DELETE_MESSAGE = 'DELETE /channels/:channel/messages/:id';
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const isStatus = (call: RestCall) => /^(⏳|🎨)/.test(String(call.body?.content ?? ''));

let fake: FakeDiscord;
let core: FakeCore;
let store: SqliteStore;
const fronts: DiscordAdapter[] = [];
const bots: Bot[] = [];
let urls: string[];

async function startFront(options: { tokenLifetimeMs?: number } = {}): Promise<{ adapter: DiscordAdapter; url: string }> {
  const bot = new Bot({
    store, core, logger: silent,
    config: { moderatorRoleIds: [fake.moderatorRoleId], rateLimit: { capacity: 10_000, windowMs: 1000 }, defaultDailyLimits: { imagine: 1000, caption: 1000 } },
  });
  bots.push(bot);
  const adapter = await startDiscordAdapter({
    token: fake.token, applicationId: fake.applicationId, apiUrl: fake.apiUrl, bot, guildId: fake.guildId, logger: silent, statusIntervalMs: 200,
    http: { publicKey: fake.publicKeyHex, port: 0, host: '127.0.0.1' }, ...options,
  });
  fronts.push(adapter);
  return { adapter, url: `http://127.0.0.1:${adapter.port}/discord/interactions` };
}

beforeAll(async () => {
  fake = await FakeDiscord.start();
  core = new FakeCore();
  // a little work per image, so that progress edits happen and jobs overlap
  core.behaviour.imagine = async (input) => {
    await new Promise((resolve) => setTimeout(resolve, 150));
    return defaultResult(input);
  };
  store = new SqliteStore(':memory:');
  urls = [(await startFront()).url, (await startFront()).url];
  fake.useHttpEndpoints(urls);
});

afterAll(async () => {
  for (const front of fronts) await front.stop();
  await store?.close();
  await fake?.stop();
});

const prompt = (value: string) => [{ name: 'prompt', type: OptionType.String, value }];
const members = (): FakeMember[] => [fake.members.alice, fake.members.bob, fake.members.mod, fake.members.roleMod];

/** The messages an interaction's reply left: the final edit of @original, or (after a deferred update) its follow-up. */
function finals(interaction: FakeInteraction): RestCall[] {
  return fake.callsFor(interaction).filter((c) => (c.route === EDIT || c.route === EDIT_BY_ID || c.route === FOLLOW_UP) && c.status === 200
    && !isStatus(c) && !(Number(c.body?.flags ?? 0) & MessageFlag.IsVoiceMessage));
}

async function replied(interaction: FakeInteraction, timeoutMs = 15_000): Promise<RestCall> {
  return fake.waitFor(() => finals(interaction).at(-1), timeoutMs, `the reply to ${interaction.id}`);
}

/** An /imagine whose job the (manual) core holds until the test resolves it: the interaction and its core job. */
async function imagineHeld(text: string, by: FakeMember): Promise<{ interaction: FakeInteraction; coreJob: FakeJob }> {
  const n = core.of('imagine').length + 1;
  const interaction = fake.sendChatInput('imagine', prompt(text), by);
  await fake.delivered(interaction);
  return { interaction, coreJob: (await core.waitForJobs(n, 'imagine')).at(-1)! };
}

test('the endpoint passes Discord\'s check: PONG to a signed PING, 401 to a PING with a bad signature, on every front', async () => {
  for (const url of urls) {
    expect(await fake.ping(url, 'good')).toMatchObject({ status: 200, body: '{"type":1}' });
    expect((await fake.ping(url, 'bad')).status).toBe(401);
  }
});

test('interactions with a missing, bad, stale or foreign signature get 401 and start nothing', async () => {
  const jobs = core.jobs.length;
  const cases = ['missing', 'bad', 'stale', 'other-key'] as const;
  for (const [i, how] of cases.entries()) {
    const body = {
      type: 2, id: `12345678901234567${i}`, application_id: fake.applicationId, token: 'forged', version: 1, guild_id: fake.guildId, channel_id: fake.channelId,
      member: { user: fake.members.alice.user, roles: [], permissions: '0', nick: null }, data: { id: '1', name: 'imagine', type: 1, options: prompt('forged') },
    };
    const answer = await fake.postSigned(urls[i % 2]!, body, how);
    expect(answer.status).toBe(401);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(core.jobs.length).toBe(jobs);
});

test('100 interactions (imagine, caption, message command, buttons) over two fronts: each acknowledged within 3 s, each with exactly one result', async () => {
  const png = solidPng(4, [0, 128, 255]);
  const sent: Array<{ kind: string; interaction: FakeInteraction }> = [];
  for (let i = 0; i < 40; i += 1) sent.push({ kind: 'imagine', interaction: fake.sendChatInput('imagine', prompt(`picture ${i}`), members()[i % 4]) });
  for (let i = 0; i < 20; i += 1) {
    const attachment = fake.hostFile(`photo-${i}.png`, png, 'image/png');
    sent.push({ kind: 'caption', interaction: fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], members()[i % 4], { attachments: { [attachment.id]: attachment } }) });
  }
  for (let i = 0; i < 20; i += 1) {
    const message = fake.userMessage(fake.members.bob, `look ${i}`, [fake.hostFile(`shared-${i}.png`, png, 'image/png')]);
    sent.push({ kind: 'message', interaction: fake.sendMessageCommand('Caption image', message, members()[(i + 1) % 4]) });
  }
  await Promise.all(sent.map((s) => fake.delivered(s.interaction)));
  await Promise.all(sent.map((s) => replied(s.interaction)));

  // buttons on the results: ten re-rolls by their requesters, ten deletes (five by the requester, five refused)
  const imagines = sent.filter((s) => s.kind === 'imagine').map((s) => s.interaction);
  const buttonOf = (interaction: FakeInteraction, action: string) => {
    const rows = (finals(interaction).at(-1)!.body!.components as Array<{ components: Array<{ custom_id: string }> }>);
    return rows.flatMap((r) => r.components.map((c) => c.custom_id)).find((id) => id.startsWith(`${action}:`))!;
  };
  const requesterOf = (interaction: FakeInteraction) => members().find((m) => m.user.id === (interaction.payload.member as { user: { id: string } }).user.id)!;
  const presses: Array<{ kind: string; interaction: FakeInteraction; of: FakeInteraction }> = [];
  for (let i = 0; i < 10; i += 1) {
    const of = imagines[i]!;
    presses.push({ kind: 'reroll', of, interaction: fake.sendButton(buttonOf(of, 'reroll'), fake.original(of)!, requesterOf(of)) });
  }
  for (let i = 10; i < 20; i += 1) {
    const of = imagines[i]!;
    const owner = requesterOf(of);
    const presser = i < 15 ? owner : members().find((m) => m !== owner && m !== fake.members.mod && m !== fake.members.roleMod)!;
    presses.push({ kind: i < 15 ? 'delete' : 'delete.refused', of, interaction: fake.sendButton(buttonOf(of, 'delete'), fake.original(of)!, presser) });
  }
  await Promise.all(presses.map((p) => fake.delivered(p.interaction)));
  await Promise.all(presses.map((p) => replied(p.interaction)));
  // a quiet moment: a second reply or a late status edit would land now
  await new Promise((resolve) => setTimeout(resolve, 600));

  const all = [...sent, ...presses];
  expect(all).toHaveLength(100);
  const perFront = new Map<string, number>();
  for (const { kind, interaction } of all) {
    const delivery = interaction.delivery!;
    perFront.set(delivery.url, (perFront.get(delivery.url) ?? 0) + 1);
    expect({ kind, outcome: delivery.outcome, status: delivery.status }).toEqual({ kind, outcome: 'accepted', status: 200 });
    expect(delivery.ackMs).toBeLessThan(3000);
    expect(interaction.response!.at - interaction.dispatchedAt).toBeLessThan(3000);
    expect(interaction.response!.type).toBe(kind === 'reroll' || kind.startsWith('delete') ? 6 : 5);
    const results = finals(interaction);
    expect({ kind, results: results.length }).toEqual({ kind, results: 1 });
  }
  // the load balancer's round-robin: both fronts answered half
  expect([...perFront.values()]).toEqual([50, 50]);

  for (const { kind, interaction } of sent) {
    const [result] = finals(interaction);
    if (kind === 'imagine') expect(result!.files).toHaveLength(1);
    else expect(String(result!.body!.content)).toMatch(/^A drawing of/);
  }
  for (const { kind, interaction, of } of presses) {
    const [result] = finals(interaction);
    if (kind === 'reroll') {
      expect(result!.files).toHaveLength(1);
      expect(fake.messages.has(fake.original(of)?.id ?? '')).toBe(true);    // the pressed message stays
    } else if (kind === 'delete') {
      expect(result!.body).toMatchObject({ content: 'Deleted.', flags: 64 });
      expect(fake.original(of)).toBeUndefined();
    } else {
      expect(result!.body).toMatchObject({ flags: 64, content: expect.stringMatching(/Only the person who asked for it or a moderator/) });
      expect(fake.original(of)).toBeDefined();
    }
  }
  expect(fake.calls.filter((c) => c.status >= 400 && c.route !== DELETE_MESSAGE)).toEqual([]);
}, 60_000);

test('/pictalk over HTTP: an ephemeral deferral, the status, and which way this front receives interactions', async () => {
  const status = fake.sendChatInput('pictalk', [], fake.members.bob);
  await fake.delivered(status);
  expect(status.delivery!.body).toBe('{"type":5,"data":{"flags":64}}');
  const reply = await replied(status);
  expect(String(reply.body!.content)).toMatch(/^Queue: .*\n[\s\S]*Today you have used[\s\S]*\nDiscord: this front answers through the HTTP interactions endpoint \(no gateway\)\.$/);
  expect(fake.original(status)!.flags! & MessageFlag.Ephemeral).toBeTruthy();
});

test('a message without an image, and an unknown button, are answered at once over HTTP without bot/', async () => {
  const jobs = core.jobs.length;
  const bare = fake.sendMessageCommand('Caption image', fake.userMessage(fake.members.bob, 'no pictures here', []), fake.members.alice);
  const stale = fake.sendButton('vote:job-1', fake.userMessage(fake.members.bob, 'old message', []), fake.members.alice);
  await Promise.all([fake.delivered(bare), fake.delivered(stale)]);
  expect(JSON.parse(bare.delivery!.body)).toEqual({ type: 4, data: { content: 'That message has no image to caption.', flags: 64 } });
  expect(JSON.parse(stale.delivery!.body)).toEqual({ type: 4, data: { content: 'This button is no longer in use.', flags: 64 } });
  expect(core.jobs.length).toBe(jobs);
});

test('a voice message the webhook refuses is posted in the channel with the bot token instead', async () => {
  fake.refuseNext(FOLLOW_UP, 400, { message: 'Cannot send voice messages in this channel', code: 50173 }, (call) => Boolean(Number(call.body?.flags ?? 0) & MessageFlag.IsVoiceMessage));
  const attachment = fake.hostFile('voice.png', solidPng(4, [10, 200, 10]), 'image/png');
  const caption = fake.sendChatInput('caption', [{ name: 'image', type: OptionType.Attachment, value: attachment.id }], fake.members.alice, { attachments: { [attachment.id]: attachment } });
  await replied(caption);
  const post = await fake.waitFor(() => fake.calls.find((c) => c.route === CHANNEL_POST && c.at >= caption.dispatchedAt && Number(c.body?.flags ?? 0) & MessageFlag.IsVoiceMessage), 10_000, 'the voice message in the channel');
  expect(post.status).toBe(200);
  expect(post.files[0]).toMatchObject({ contentType: 'audio/ogg' });
  expect(fake.callsFor(caption, FOLLOW_UP).map((c) => c.status)).toEqual([400]);
});

test('one interaction delivered to both fronts runs once and gets one reply', async () => {
  const before = core.jobs.length;
  const twice = fake.sendChatInput('imagine', prompt('delivered twice'), fake.members.alice, undefined, { deliverTo: 'all' });
  await fake.delivered(twice);
  await replied(twice);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(twice.deliveries!.map((d) => d.status)).toEqual([200, 200]);
  // one imagine job (its alt text is a caption job of its own)
  expect(core.jobs.slice(before).filter((j) => j.input.kind === 'imagine').map((j) => j.owner.userId)).toEqual([fake.members.alice.user.id]);
  expect(finals(twice)).toHaveLength(1);
});

test('a button pressed on one front for a job that another front started: the job is found through the shared store and core', async () => {
  core.manual = ['imagine'];
  try {
    const { interaction: job, coreJob } = await imagineHeld('cancel me elsewhere', fake.members.alice);
    await fake.waitFor(() => fake.callsFor(job, EDIT).some(isStatus), 5000, 'a status edit with the Cancel button');
    const cancelId = ((fake.callsFor(job, EDIT).filter(isStatus).at(-1)!.body!.components as Array<{ components: Array<{ custom_id: string }> }>)[0]!.components[0]!.custom_id);
    const press = fake.sendButton(cancelId, fake.original(job)!, fake.members.alice);
    await fake.delivered(press);
    expect(press.delivery!.url).not.toBe(job.delivery!.url);
    expect((await replied(press)).body).toMatchObject({ flags: 64, content: expect.stringMatching(/^Cancelling/) });
    expect(coreJob.cancelled).toBe(true);
    await fake.waitFor(() => fake.callsFor(job, FOLLOW_UP).length > 0, 5000, 'the cancelled job\'s notice');
  } finally {
    core.manual = false;
  }
});

test('a job that ends after the interaction token expired posts its result in the channel, mentioning the requester', async () => {
  const { url } = await startFront({ tokenLifetimeMs: 1500 });
  fake.tokenLifetimeMs = 1500;
  fake.useHttpEndpoints([url]);
  core.manual = ['imagine'];
  try {
    const { interaction: late, coreJob } = await imagineHeld('a long queue', fake.members.bob);
    await new Promise((resolve) => setTimeout(resolve, 1700));
    const placeholder = fake.original(late)!.id;
    coreJob.resolve();
    const post = await fake.waitFor(() => fake.calls.find((c) => c.route === CHANNEL_POST && String(c.body?.content ?? '').includes(fake.members.bob.user.id)), 10_000, 'the channel post');
    expect(post.status).toBe(200);
    expect(String(post.body!.content)).toMatch(new RegExp(`^<@${fake.members.bob.user.id}>`));
    expect(post.files).toHaveLength(1);
    expect(post.body!.allowed_mentions).toEqual({ users: [fake.members.bob.user.id] });
    // the deferred "thinking…" message, which the token can no longer edit, is removed with the bot token
    await fake.waitFor(() => fake.deletedMessages.includes(placeholder), 5000, 'the placeholder removed');
    expect(fake.callsFor(late, EDIT).filter((c) => !isStatus(c))).toHaveLength(0);
  } finally {
    core.manual = false;
    fake.tokenLifetimeMs = 15 * 60_000;
    fake.useHttpEndpoints(urls);
  }
});
