/**
 * The interactions endpoint on its own, with a key pair of the test's: what it refuses before anything else happens
 * (size, missing, malformed, wrong and stale signatures, other paths and methods), PING, and the key's parsing.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REST, type APIInteraction } from 'discord.js';
import { MAX_INTERACTION_BYTES, checkSignature, publicKeyFromHex, startInteractionsEndpoint, type InteractionsEndpoint } from '../../../adapters/discord/discord.http.js';
import { InteractionHandler } from '../../../adapters/discord/interaction.handler.js';
import { createEndpointMetrics, createMetricsRegistry } from '../../../inference/metrics.js';
import { shardOf, startDiscordAdapter } from '../../../adapters/discord/discord.adapter.js';
import { actorOf, snowflakeTime, translateInteraction } from '../../../adapters/discord/interaction.translate.js';
import type { BotRequest } from '../../../bot/types.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const publicHex = (key: KeyObject) => key.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
const handled: BotRequest[] = [];
const registry = createMetricsRegistry();
const metrics = createEndpointMetrics(registry, 'discord');
let endpoint: InteractionsEndpoint;
let url: string;

function signed(body: string, timestamp = String(Math.floor(Date.now() / 1000)), key = privateKey): Record<string, string> {
  const signature = sign(null, Buffer.concat([Buffer.from(timestamp), Buffer.from(body)]), key).toString('hex');
  return { 'content-type': 'application/json', 'x-signature-ed25519': signature, 'x-signature-timestamp': timestamp };
}

async function post(body: string, headers: Record<string, string>, path = '/discord/interactions') {
  const response = await fetch(`${url}${path}`, { method: 'POST', body, headers });
  return { status: response.status, text: await response.text() };
}

const ping = JSON.stringify({ type: 1, id: '1234567890123456789', application_id: '123456789012345678', token: 't', version: 1 });

beforeAll(async () => {
  const rest = new REST({ version: '10', api: 'http://127.0.0.1:9/api' }).setToken('x');
  const bot = { handle: async (request: BotRequest) => void handled.push(request) };
  const handler = new InteractionHandler({ rest, applicationId: '123456789012345678', bot, logger: silent, statusIntervalMs: 0 });
  endpoint = await startInteractionsEndpoint({ publicKey: publicHex(publicKey), port: 0, host: '127.0.0.1', handler, rest, applicationId: '123456789012345678', logger: silent, metrics });
  url = `http://127.0.0.1:${endpoint.port}`;
});

afterAll(async () => {
  await endpoint?.close();
});

test('PING with a good signature gets PONG', async () => {
  expect(await post(ping, signed(ping))).toEqual({ status: 200, text: '{"type":1}' });
});

test('a missing, malformed, wrong, foreign or stale signature gets 401 and nothing else happens', async () => {
  const good = signed(ping);
  const other = generateKeyPairSync('ed25519').privateKey;
  const flipped = good['x-signature-ed25519']!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  const cases: Array<Record<string, string>> = [
    { 'content-type': 'application/json' },
    { ...good, 'x-signature-ed25519': 'zz' },
    { ...good, 'x-signature-ed25519': flipped },
    signed(ping, undefined, other),
    signed(ping, String(Math.floor(Date.now() / 1000) - 600)),
    { ...good, 'x-signature-timestamp': String(Number(good['x-signature-timestamp']) + 1) },
  ];
  for (const headers of cases) expect(await post(ping, headers)).toEqual({ status: 401, text: 'invalid request signature' });
  // the body signed is the body checked: one more byte and the signature no longer holds
  expect((await post(`${ping} `, good)).status).toBe(401);
  expect(handled).toHaveLength(0);
});

test('a body over the limit is refused by its declared size, before it is read', async () => {
  const big = 'x'.repeat(MAX_INTERACTION_BYTES + 1);
  expect((await post(big, signed(big))).status).toBe(413);
});

test('other paths and methods are refused; a signed body that is not an interaction is a 400', async () => {
  expect((await post(ping, signed(ping), '/interactions')).status).toBe(404);
  expect((await fetch(`${url}/discord/interactions`)).status).toBe(405);
  expect((await post('[1]', signed('[1]'))).status).toBe(400);
});

test('an unknown command is answered at once, ephemerally, without bot/', async () => {
  const body = JSON.stringify({
    type: 2, id: '1234567890123456790', application_id: '123456789012345678', token: 't', version: 1, guild_id: '123456789012345678',
    channel_id: '123456789012345679', member: { user: { id: '123456789012345680', username: 'a', global_name: null, discriminator: '0', avatar: null }, roles: [], permissions: '0' },
    data: { id: '1', name: 'frobnicate', type: 1 },
  });
  const answer = await post(body, signed(body));
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.text)).toEqual({ type: 4, data: { content: 'pictalk does not know the command `/frobnicate`.', flags: 64 } });
  expect(handled).toHaveLength(0);
});

test('acknowledgements and refusals are counted for Prometheus, by response and by reason', async () => {
  const text = await registry.metrics();
  expect(text).toMatch(/pictalk_interaction_ack_seconds_count\{platform="discord",response="pong"\} [1-9]/);
  expect(text).toMatch(/pictalk_interaction_ack_seconds_count\{platform="discord",response="message"\} [1-9]/);
  for (const reason of ['missing_signature', 'malformed_signature', 'bad_signature', 'stale', 'too_large', 'not_found', 'method', 'malformed']) {
    expect(text).toMatch(new RegExp(`pictalk_interactions_refused_total\\{platform="discord",reason="${reason}"\\} [1-9]`));
  }
});

test('checkSignature and publicKeyFromHex', () => {
  const key = publicKeyFromHex(publicHex(publicKey));
  const body = Buffer.from('{}');
  const now = Date.now();
  const ts = String(Math.floor(now / 1000));
  const sig = sign(null, Buffer.concat([Buffer.from(ts), body]), privateKey).toString('hex');
  expect(checkSignature(key, sig, ts, body, now)).toEqual({ ok: true });
  expect(checkSignature(key, sig, ts, body, now + 301_000)).toEqual({ ok: false, reason: 'stale timestamp', label: 'stale' });
  expect(checkSignature(key, undefined, ts, body, now)).toEqual({ ok: false, reason: 'missing signature headers', label: 'missing_signature' });
  expect(() => publicKeyFromHex('abc')).toThrow(/DISCORD_PUBLIC_KEY to be 64 hexadecimal characters/);
});

describe('starting in HTTP mode', () => {
  const options = (apiUrl: string, token = 'x') => ({
    token, applicationId: '123456789012345678', apiUrl, bot: { handle: async () => undefined }, logger: silent,
    http: { publicKey: publicHex(publicKey), port: 0, host: '127.0.0.1' },
  });

  test('Discord unreachable while registering the commands: the endpoint starts anyway and answers PING', async () => {
    const adapter = await startDiscordAdapter(options('http://127.0.0.1:9/api'));
    try {
      const response = await fetch(`http://127.0.0.1:${adapter.port}/discord/interactions`, { method: 'POST', body: ping, headers: signed(ping) });
      expect(await response.text()).toBe('{"type":1}');
    } finally {
      await adapter.stop();
    }
  });

  test('a token Discord refuses stops start-up, naming DISCORD_TOKEN, and leaves no port open', async () => {
    const refuse = createServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"401: Unauthorized","code":0}'));
    await new Promise<void>((resolve) => refuse.listen(0, '127.0.0.1', resolve));
    try {
      const apiUrl = `http://127.0.0.1:${(refuse.address() as AddressInfo).port}/api`;
      await expect(startDiscordAdapter(options(apiUrl, 'wrong'))).rejects.toMatchObject({ code: 'config.invalid', message: expect.stringMatching(/DISCORD_TOKEN/) });
    } finally {
      await new Promise<void>((resolve) => refuse.close(() => resolve()));
    }
  });
});

describe('reading interactions from other senders', () => {
  test('ids that are not snowflakes and a member without permissions or roles still make a request', () => {
    const interaction = {
      type: 2, id: 'interaction-1', application_id: 'app', token: 't', version: 1, guild_id: 'guild-a', channel_id: 'channel-a',
      member: { user: { id: 'user-1', username: 'a', global_name: null, discriminator: '0', avatar: null } },
      data: { id: '1', name: 'pictalk', type: 1 },
    } as unknown as APIInteraction;
    expect(actorOf(interaction)).toMatchObject({ userId: 'user-1', spaceId: 'guild-a', roleIds: [], platformModerator: false });
    expect(snowflakeTime('interaction-1', 42)).toBe(42);
    expect(shardOf('guild-a', 4)).toBe(0);
    expect(translateInteraction(interaction)).toMatchObject({ kind: 'command', command: { name: 'status' } });
  });
});

test('a Discord that never answers the read of the deferred reply holds a command up for 2 s at most', async () => {
  const hanging = createServer((req, res) => {
    if (req.method === 'GET') return;                          // never answered
    res.writeHead(200, { 'content-type': 'application/json' }).end(req.url?.includes('/commands') ? '[]' : '{"id":"1"}');
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const seen: number[] = [];
  const adapter = await startDiscordAdapter({
    token: 'x', applicationId: '123456789012345678', apiUrl: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/api`, logger: silent,
    bot: { handle: async () => void seen.push(Date.now()) }, http: { publicKey: publicHex(publicKey), port: 0, host: '127.0.0.1' },
  });
  try {
    const body = JSON.stringify({
      type: 2, id: '1234567890123456791', application_id: '123456789012345678', token: 't2', version: 1, guild_id: '123456789012345678',
      channel_id: '123456789012345679', member: { user: { id: '123456789012345680', username: 'a', global_name: null, discriminator: '0', avatar: null }, roles: [], permissions: '0' },
      data: { id: '1', name: 'imagine', type: 1, options: [{ name: 'prompt', type: 3, value: 'a red square' }] },
    });
    const sent = Date.now();
    const response = await fetch(`http://127.0.0.1:${adapter.port}/discord/interactions`, { method: 'POST', body, headers: signed(body) });
    expect(await response.json()).toEqual({ type: 5, data: { flags: 0 } });
    for (let i = 0; i < 100 && seen.length === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toHaveLength(1);
    expect(seen[0]! - sent).toBeLessThan(3000);
  } finally {
    await adapter.stop();
    hanging.closeAllConnections();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
  }
});
