/**
 * The fake Discord checked on its own, without pictalk's adapter: HTTP interaction delivery signed with Ed25519 (to a
 * tiny endpoint that verifies signatures the way Discord's docs describe), the endpoint's answer as the initial
 * response, the interaction webhook after it, several guilds and DMs, and the sharded gateway through a raw websocket.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { FakeDiscord, type FakeInteraction } from './fake-discord.js';
import { OptionType } from './fake-discord.payloads.js';

/** The DER header of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const ED25519_SPKI_HEADER = Buffer.from('302a300506032b6570032100', 'hex');

function publicKeyFromHex(hex: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_HEADER, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });
}

interface Seen {
  headers: IncomingHttpHeaders;
  /** The signature verified over timestamp + raw body. */
  signatureValid: boolean;
  /** The timestamp is within 5 s of now. */
  fresh: boolean;
  body: Record<string, unknown> | undefined;
}

/**
 * A tiny interactions endpoint: verifies the signature (401 if it does not verify or is older than 5 s), answers a
 * PING with `{type:1}` and anything else with `answer` (default `{type:5}`, a deferral) after `delayMs`.
 */
class Endpoint {
  readonly seen: Seen[] = [];
  delayMs = 0;
  answer: (body: Record<string, unknown>) => { status: number; body: string } = () => ({ status: 200, body: JSON.stringify({ type: 5 }) });

  private readonly server: Server;
  url = '';

  private constructor(private readonly publicKey: KeyObject) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => this.onRequest(req.headers, Buffer.concat(chunks), res));
    });
  }

  static async start(publicKeyHex: string): Promise<Endpoint> {
    const endpoint = new Endpoint(publicKeyFromHex(publicKeyHex));
    await new Promise<void>((resolve) => endpoint.server.listen(0, '127.0.0.1', resolve));
    endpoint.url = `http://127.0.0.1:${(endpoint.server.address() as AddressInfo).port}/interactions`;
    return endpoint;
  }

  private onRequest(headers: IncomingHttpHeaders, raw: Buffer, res: ServerResponse): void {
    const signature = headers['x-signature-ed25519'];
    const timestamp = headers['x-signature-timestamp'];
    const signatureValid = typeof signature === 'string' && typeof timestamp === 'string'
      && verify(null, Buffer.concat([Buffer.from(timestamp), raw]), this.publicKey, Buffer.from(signature, 'hex'));
    const fresh = typeof timestamp === 'string' && Math.abs(Date.now() / 1000 - Number(timestamp)) <= 5;
    const body = raw.length ? JSON.parse(raw.toString('utf8')) as Record<string, unknown> : undefined;
    this.seen.push({ headers, signatureValid, fresh, body });
    if (!signatureValid || !fresh || !body) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('invalid request signature');
      return;
    }
    if (body.type === 1) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 1 }));
      return;
    }
    const answer = this.answer(body);
    setTimeout(() => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body), this.delayMs);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A raw gateway client: every payload it got, in order, and a wait for the next one that matches. */
class RawGateway {
  readonly received: Array<{ op: number; t: string | null; s: number | null; d: unknown }> = [];
  closed?: { code: number; reason: string };
  private cursor = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (raw) => this.received.push(JSON.parse(raw.toString()) as RawGateway['received'][number]));
    socket.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; });
  }

  static async connect(fake: FakeDiscord): Promise<RawGateway> {
    const client = new RawGateway(new WebSocket(`${fake.gatewayUrl}?v=10&encoding=json`));
    await client.next((p) => p.op === 10, 'HELLO');
    return client;
  }

  send(op: number, d: unknown): void {
    this.socket.send(JSON.stringify({ op, d }));
  }

  identify(fake: FakeDiscord, shard?: [number, number]): void {
    this.send(2, { token: fake.token, intents: 1, properties: { os: 'linux', browser: 'self-test', device: 'self-test' }, ...(shard ? { shard } : {}) });
  }

  /** The next payload (after the ones already taken) that matches. */
  async next(match: (payload: RawGateway['received'][number]) => boolean, what: string, timeoutMs = 3000): Promise<RawGateway['received'][number]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex((payload, i) => i >= this.cursor && match(payload));
      if (index >= 0) {
        this.cursor = index + 1;
        return this.received[index]!;
      }
      if (Date.now() > deadline) throw new Error(`raw gateway: no ${what} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async closedWith(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('raw gateway: the server did not close the socket');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.closed;
  }

  close(): void {
    this.socket.terminate();
  }
}

const prompt = (value: string) => [{ name: 'prompt', type: OptionType.String, value }];

async function webhook(fake: FakeDiscord, interaction: FakeInteraction, method: string, tail: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const response = await fetch(`${fake.apiUrl}/v10/webhooks/${fake.applicationId}/${interaction.token}${tail}`, {
    method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) as Record<string, unknown> : undefined };
}

async function callback(fake: FakeDiscord, interaction: FakeInteraction, body: unknown): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const response = await fetch(`${fake.apiUrl}/v10/interactions/${interaction.id}/${interaction.token}/callback`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) as Record<string, unknown> : undefined };
}

describe('HTTP interactions: signatures, delivery, initial response', () => {
  let fake: FakeDiscord;
  let a: Endpoint;
  let b: Endpoint;

  beforeEach(async () => {
    fake = await FakeDiscord.start();
    a = await Endpoint.start(fake.publicKeyHex);
    b = await Endpoint.start(fake.publicKeyHex);
  });

  afterEach(async () => {
    await fake.stop();
    await a.close();
    await b.close();
  });

  test('the public key is 64 hex digits, and GET /applications/@me shows it as verify_key', async () => {
    expect(fake.publicKeyHex).toMatch(/^[0-9a-f]{64}$/);
    const response = await fetch(`${fake.apiUrl}/v10/applications/@me`, { headers: { authorization: `Bot ${fake.token}` } });
    expect(((await response.json()) as { verify_key: string }).verify_key).toBe(fake.publicKeyHex);
  });

  test('a good PING verifies and gets {type:1}; bad, missing, stale and other-key ones do not', async () => {
    expect(await fake.ping(a.url)).toMatchObject({ status: 200, body: '{"type":1}' });
    expect(a.seen[0]).toMatchObject({ signatureValid: true, fresh: true, body: { type: 1, application_id: fake.applicationId, version: 1 } });
    expect(a.seen[0]!.headers).toMatchObject({ 'content-type': 'application/json', 'user-agent': 'Discord-Interactions/1.0 (+https://discord.com)' });
    expect(a.seen[0]!.headers['x-signature-timestamp']).toMatch(/^\d{10}$/);
    expect(a.seen[0]!.headers['x-signature-ed25519']).toMatch(/^[0-9a-f]{128}$/);

    for (const how of ['bad', 'missing', 'other-key'] as const) {
      expect((await fake.ping(a.url, how)).status).toBe(401);
      expect(a.seen.at(-1)!.signatureValid).toBe(false);
    }
    expect(a.seen.at(-2)!.headers['x-signature-ed25519']).toBeUndefined(); // 'missing' sends neither header
    expect(a.seen.at(-2)!.headers['x-signature-timestamp']).toBeUndefined();

    // Stale: correctly signed, but ten minutes old; an endpoint must refuse it as a replay.
    expect((await fake.ping(a.url, 'stale')).status).toBe(401);
    const stale = a.seen.at(-1)!;
    expect(stale).toMatchObject({ signatureValid: true, fresh: false });
    expect(Date.now() / 1000 - Number(stale.headers['x-signature-timestamp'])).toBeGreaterThanOrEqual(599);
    expect(fake.pings.map((p) => [p.how, p.status])).toEqual([['good', 200], ['bad', 401], ['missing', 401], ['other-key', 401], ['stale', 401]]);
  });

  test('postSigned signs any body; the signature covers the exact bytes', async () => {
    expect((await fake.postSigned(a.url, { type: 1 })).status).toBe(200);
    expect((await fake.postSigned(a.url, '{"type": 1}')).status).toBe(200);
    expect((await fake.postSigned(a.url, { type: 1 }, 'good', { headers: { 'X-Signature-Timestamp': '1700000000' } })).status).toBe(401);
  });

  test('interactions go round-robin over the endpoints, signed, and the answer is the initial response', async () => {
    fake.useHttpEndpoints([a.url, b.url]);
    const sent = [1, 2, 3, 4].map((n) => fake.sendChatInput('imagine', prompt(`cat ${n}`)));
    await Promise.all(sent.map((interaction) => fake.delivered(interaction)));
    expect(sent.map((interaction) => interaction.delivery!.url)).toEqual([a.url, b.url, a.url, b.url]);
    expect(a.seen.map((s) => s.body!.id)).toEqual([sent[0]!.id, sent[2]!.id]);
    expect([...a.seen, ...b.seen].every((s) => s.signatureValid && s.fresh)).toBe(true);
    for (const interaction of sent) {
      expect(interaction.delivery).toMatchObject({ status: 200, outcome: 'accepted', body: '{"type":5}' });
      expect(interaction.delivery!.ackMs).toBeGreaterThanOrEqual(0);
      expect(interaction.response).toMatchObject({ type: 5, ephemeral: false, via: 'http' });
      expect(fake.original(interaction)).toMatchObject({ content: '', flags: 128 }); // LOADING until the first edit
    }
    expect(fake.callsFor(sent[0]!)).toHaveLength(0); // an HTTP answer is not a REST call

    fake.useGateway();
    expect(() => fake.sendChatInput('imagine', prompt('no client'))).toThrow(/no session/);
  });

  test('after an HTTP deferral the webhook works: @original, follow-ups by id, and a second response gets 40060', async () => {
    fake.useHttpEndpoints([a.url]);
    const interaction = fake.sendChatInput('imagine', prompt('a red circle'));
    await fake.delivered(interaction);

    expect(await callback(fake, interaction, { type: 5 })).toMatchObject({ status: 400, json: { code: 40060 } });
    const edited = await webhook(fake, interaction, 'PATCH', '/messages/@original', { content: 'done' });
    expect(edited).toMatchObject({ status: 200, json: { content: 'done', flags: 0 } });
    expect(await webhook(fake, interaction, 'GET', '/messages/@original')).toMatchObject({ status: 200, json: { content: 'done' } });

    const followUp = await webhook(fake, interaction, 'POST', '?wait=true', { content: 'one more' });
    expect(followUp).toMatchObject({ status: 200, json: { content: 'one more', channel_id: fake.channelId } });
    const followUpId = String(followUp.json!.id);
    expect(await webhook(fake, interaction, 'PATCH', `/messages/${followUpId}`, { content: 'one more, edited' })).toMatchObject({ status: 200, json: { id: followUpId, content: 'one more, edited' } });
    expect(await webhook(fake, interaction, 'GET', `/messages/${followUpId}`)).toMatchObject({ status: 200, json: { content: 'one more, edited' } });
    expect((await webhook(fake, interaction, 'DELETE', `/messages/${followUpId}`)).status).toBe(204);
    expect(await webhook(fake, interaction, 'GET', `/messages/${followUpId}`)).toMatchObject({ status: 404, json: { code: 10008 } });
    // Without ?wait=true Discord makes the message but answers 204.
    expect((await webhook(fake, interaction, 'POST', '', { content: 'no wait' })).status).toBe(204);

    fake.tokenLifetimeMs = 0;
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await webhook(fake, interaction, 'PATCH', '/messages/@original', { content: 'too late' })).toMatchObject({ status: 401, json: { code: 50027 } });
  });

  test('a deferred update (6) over HTTP makes the message the button sits on @original', async () => {
    fake.useHttpEndpoints([a.url]);
    const command = fake.sendChatInput('imagine', prompt('with a button'));
    await fake.delivered(command);
    await webhook(fake, command, 'PATCH', '/messages/@original', { content: 'working', components: [{ type: 1, components: [{ type: 2, style: 4, label: 'Cancel', custom_id: 'cancel:1' }] }] });
    const message = fake.original(command)!;

    a.answer = () => ({ status: 200, body: JSON.stringify({ type: 6 }) });
    const press = fake.sendButton('cancel:1', message, fake.members.bob);
    await fake.delivered(press);
    expect(press.response).toMatchObject({ type: 6, via: 'http' });
    expect(press.originalId).toBe(message.id);
    expect(await webhook(fake, press, 'PATCH', '/messages/@original', { content: 'cancelled', components: [] })).toMatchObject({ status: 200, json: { id: message.id, content: 'cancelled', components: [] } });
  });

  test('an answer after the deadline, a non-200 and a body that is not a response do not count', async () => {
    fake.useHttpEndpoints([a.url]);
    fake.responseDeadlineMs = 50;
    a.delayMs = 150;
    const late = fake.sendChatInput('imagine', prompt('slow'));
    await fake.delivered(late);
    expect(late.response).toBeUndefined();
    expect(late.delivery).toMatchObject({ status: 200, outcome: 'late' });
    expect(late.lateResponse).toBe(late.delivery);
    expect(late.delivery!.ackMs).toBeGreaterThanOrEqual(140);
    expect(await callback(fake, late, { type: 5 })).toMatchObject({ status: 404, json: { code: 10062 } });
    expect(await webhook(fake, late, 'PATCH', '/messages/@original', { content: 'x' })).toMatchObject({ status: 404, json: { code: 10015 } });

    fake.responseDeadlineMs = 3000;
    a.delayMs = 0;
    a.answer = () => ({ status: 500, body: JSON.stringify({ type: 5 }) });
    const failed = fake.sendChatInput('imagine', prompt('500'));
    a.answer = () => ({ status: 200, body: 'not json' });
    const garbled = fake.sendChatInput('imagine', prompt('garbled'));
    a.answer = () => ({ status: 200, body: JSON.stringify({ type: 1 }) });
    const pong = fake.sendChatInput('imagine', prompt('pong'));
    await Promise.all([failed, garbled, pong].map((interaction) => fake.delivered(interaction)));
    for (const interaction of [failed, garbled, pong]) {
      expect(interaction.response).toBeUndefined();
      expect(interaction.delivery!.outcome).toBe('invalid');
    }
    // With no answer yet counted, the bot may still answer by callback.
    expect((await callback(fake, failed, { type: 4, data: { content: 'ok' } })).status).toBe(204);
    expect(failed.response).toMatchObject({ type: 4, via: 'callback' });
  });

  test('an endpoint that is not there counts as a failed delivery', async () => {
    fake.useHttpEndpoints(['http://127.0.0.1:1/interactions']);
    const interaction = fake.sendChatInput('imagine', prompt('nowhere'));
    await fake.delivered(interaction);
    expect(interaction.delivery).toMatchObject({ status: 0, outcome: 'failed' });
    expect(interaction.response).toBeUndefined();
  });

  test('one interaction delivered to two fronts: the first answer counts, the second is a duplicate', async () => {
    fake.useHttpEndpoints([a.url, b.url]);
    b.delayMs = 100;
    const both = fake.sendChatInput('imagine', prompt('twice'), fake.members.alice, undefined, { deliverTo: 'all' });
    await fake.delivered(both);
    expect(a.seen[0]!.body!.id).toBe(both.id);
    expect(b.seen[0]!.body!.token).toBe(both.token);
    expect(both.delivery).toMatchObject({ url: a.url, outcome: 'accepted' });
    expect(both.duplicateResponses).toEqual([expect.objectContaining({ url: b.url, outcome: 'duplicate' })]);
    expect(both.deliveries).toHaveLength(2);
    expect([...fake.messages.values()].filter((m) => m.interaction_metadata?.id === both.id)).toHaveLength(1);

    b.delayMs = 0;
    const again = await fake.redeliver(both, b.url);
    expect(again).toMatchObject({ url: b.url, outcome: 'duplicate' });
    expect(both.duplicateResponses).toHaveLength(2);
  });
});

describe('guilds and DMs', () => {
  let fake: FakeDiscord;
  let endpoint: Endpoint;

  beforeEach(async () => {
    fake = await FakeDiscord.start();
    endpoint = await Endpoint.start(fake.publicKeyHex);
    fake.useHttpEndpoints([endpoint.url]);
  });

  afterEach(async () => {
    await fake.stop();
    await endpoint.close();
  });

  test('an interaction in another guild carries that guild, its channel and the member with that guild\'s roles', async () => {
    const other = fake.addGuild();
    expect(other.guildId).toMatch(/^\d{17,20}$/);
    expect(fake.allGuilds().map((g) => g.guildId)).toEqual([fake.guildId, other.guildId]);
    const interaction = fake.sendChatInput('imagine', prompt('elsewhere'), fake.members.roleMod, undefined, { guildId: other.guildId });
    expect(interaction.payload).toMatchObject({
      guild_id: other.guildId, channel_id: other.channelId, channel: { id: other.channelId, type: 0, guild_id: other.guildId }, context: 0,
      member: { user: { id: fake.members.roleMod.user.id }, roles: [other.moderatorRoleId, other.artistRoleId] },
    });
    await fake.delivered(interaction);
    expect(fake.original(interaction)!.channel_id).toBe(other.channelId);
    expect(() => fake.sendChatInput('imagine', [], fake.members.alice, undefined, { guildId: '123456789012345678' })).toThrow(/unknown guild/);
  });

  test('a DM interaction has a user, a DM channel and no guild; the bot can post and delete in that channel', async () => {
    const interaction = fake.sendChatInput('imagine', prompt('in private'), fake.members.bob, undefined, { dm: true });
    const channelId = fake.dmChannelId(fake.members.bob);
    expect(interaction.payload).toMatchObject({ channel_id: channelId, channel: { id: channelId, type: 1 }, user: { id: fake.members.bob.user.id }, context: 1 });
    expect(interaction.payload).not.toHaveProperty('guild_id');
    expect(interaction.payload).not.toHaveProperty('member');
    await fake.delivered(interaction);
    expect(fake.original(interaction)).toMatchObject({ channel_id: channelId, interaction_metadata: { user: { id: fake.members.bob.user.id } } });

    const auth = { authorization: `Bot ${fake.token}`, 'content-type': 'application/json' };
    const posted = await fetch(`${fake.apiUrl}/v10/channels/${channelId}/messages`, { method: 'POST', headers: auth, body: JSON.stringify({ content: 'hello' }) });
    const message = await posted.json() as { id: string; channel_id: string };
    expect(posted.status).toBe(200);
    expect(message.channel_id).toBe(channelId);
    expect((await fetch(`${fake.apiUrl}/v10/channels/${fake.channelId}/messages/${message.id}`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await fetch(`${fake.apiUrl}/v10/channels/${channelId}/messages/${message.id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(`${fake.apiUrl}/v10/channels/111111111111111111/messages`, { method: 'POST', headers: auth, body: '{"content":"x"}' })).status).toBe(404);

    // POST /users/@me/channels finds the same DM channel.
    const dm = await fetch(`${fake.apiUrl}/v10/users/@me/channels`, { method: 'POST', headers: auth, body: JSON.stringify({ recipient_id: fake.members.bob.user.id }) });
    expect(await dm.json()).toMatchObject({ id: channelId, type: 1, recipients: [{ id: fake.members.bob.user.id }] });
  });
});

describe('the sharded gateway', () => {
  let fake: FakeDiscord;
  const clients: RawGateway[] = [];

  beforeEach(async () => {
    fake = await FakeDiscord.start({ shards: 2 });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await fake.stop();
  });

  const connect = async () => {
    const client = await RawGateway.connect(fake);
    clients.push(client);
    return client;
  };

  test('GET /gateway/bot asks for two shards', async () => {
    const response = await fetch(`${fake.apiUrl}/v10/gateway/bot`, { headers: { authorization: `Bot ${fake.token}` } });
    expect(await response.json()).toMatchObject({ shards: 2, session_start_limit: { max_concurrency: 1 } });
  });

  test('shard [1, 2] gets READY with only its guilds, their GUILD_CREATE, and the interactions of its guilds', async () => {
    const onOne = fake.addGuild({ shard: 1 });
    const onZero = fake.addGuild({ shard: 0 });
    expect([fake.shardOf(onOne.guildId), fake.shardOf(onZero.guildId)]).toEqual([1, 0]);
    expect(Number((BigInt(onOne.guildId) >> 22n) % 2n)).toBe(1);
    const expected = fake.allGuilds().filter((g) => fake.shardOf(g.guildId) === 1).map((g) => g.guildId);

    const client = await connect();
    client.identify(fake, [1, 2]);
    const ready = await client.next((p) => p.t === 'READY', 'READY');
    expect(ready.d).toMatchObject({ shard: [1, 2] });
    expect((ready.d as { guilds: Array<{ id: string }> }).guilds.map((g) => g.id).sort()).toEqual([...expected].sort());
    const created: string[] = [];
    for (const _ of expected) created.push(((await client.next((p) => p.t === 'GUILD_CREATE', 'GUILD_CREATE')).d as { id: string }).id);
    expect(created.sort()).toEqual([...expected].sort());
    expect(fake.gateway.identifies.at(-1)!.shard).toEqual([1, 2]);
    expect(fake.gateway.connectedShards()).toEqual([1]);
    expect(fake.gateway.connected).toBe(false); // shard 0 is not there

    const interaction = fake.sendChatInput('imagine', prompt('shard one'), fake.members.alice, undefined, { guildId: onOne.guildId });
    const event = await client.next((p) => p.t === 'INTERACTION_CREATE', 'INTERACTION_CREATE');
    expect(event.d).toMatchObject({ id: interaction.id, guild_id: onOne.guildId });

    // Shard 0 has no session: its guild's interactions, and DMs, fail loudly.
    expect(() => fake.sendChatInput('imagine', prompt('shard zero'), fake.members.alice, undefined, { guildId: onZero.guildId })).toThrow(/shard 0/);
    expect(() => fake.sendChatInput('imagine', prompt('dm'), fake.members.alice, undefined, { dm: true })).toThrow(/shard 0/);

    // A guild added while shard 1 is connected arrives as a GUILD_CREATE on it.
    const joined = fake.addGuild({ shard: 1 });
    expect((await client.next((p) => p.t === 'GUILD_CREATE', 'the new GUILD_CREATE')).d).toMatchObject({ id: joined.guildId });
  });

  test('a shard resumes on its own and gets what it missed', async () => {
    const onOne = fake.addGuild({ shard: 1 });
    const first = await connect();
    first.identify(fake, [1, 2]);
    const ready = await first.next((p) => p.t === 'READY', 'READY');
    const sessionId = (ready.d as { session_id: string }).session_id;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const seq = fake.gateway.sequenceOf(1);

    fake.gateway.disconnect(4000, 'blip', 1);
    expect((await first.closedWith()).code).toBe(4000);
    const missed = fake.sendChatInput('imagine', prompt('while away'), fake.members.alice, undefined, { guildId: onOne.guildId });

    const second = await connect();
    second.send(6, { token: fake.token, session_id: sessionId, seq });
    expect((await second.next((p) => p.t === 'INTERACTION_CREATE', 'the replayed interaction')).d).toMatchObject({ id: missed.id });
    await second.next((p) => p.t === 'RESUMED', 'RESUMED');
    expect(fake.gateway.resumes.at(-1)).toMatchObject({ shard: 1, replayed: 1 });
  });

  test('IDENTIFY with a shard that does not exist is closed with 4010; too few shards with 4011', async () => {
    const outOfRange = await connect();
    outOfRange.identify(fake, [2, 2]);
    expect((await outOfRange.closedWith()).code).toBe(4010);

    const tooFew = await connect();
    tooFew.identify(fake, [0, 1]);
    expect((await tooFew.closedWith()).code).toBe(4011);

    const unsharded = await connect();
    unsharded.identify(fake);
    expect((await unsharded.closedWith()).code).toBe(4011);
    expect(fake.gateway.identifies.map((i) => [i.shard, i.closedWith])).toEqual([[[2, 2], 4010], [[0, 1], 4011], [[0, 1], 4011]]);
  });
});

describe('one shard, as before', () => {
  test('an IDENTIFY without `shard` is shard [0, 1] and gets every guild', async () => {
    const fake = await FakeDiscord.start();
    const other = fake.addGuild();
    const client = await RawGateway.connect(fake);
    try {
      client.identify(fake);
      const ready = await client.next((p) => p.t === 'READY', 'READY');
      expect(ready.d).toMatchObject({ shard: [0, 1], guilds: [{ id: fake.guildId }, { id: other.guildId }] });
      const interaction = fake.sendChatInput('imagine', prompt('plain'));
      expect((await client.next((p) => p.t === 'INTERACTION_CREATE', 'INTERACTION_CREATE')).d).toMatchObject({ id: interaction.id, guild_id: fake.guildId });
      fake.gateway.dispatch('INTERACTION_CREATE', interaction.payload);
      expect((await client.next((p) => p.t === 'INTERACTION_CREATE', 'the second dispatch')).d).toMatchObject({ id: interaction.id });
      expect(() => fake.sendChatInput('imagine', [], fake.members.alice, undefined, { deliverTo: 'all' })).toThrow(/needs HTTP endpoints/);
    } finally {
      client.close();
      await fake.stop();
    }
  });
});
