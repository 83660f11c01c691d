/**
 * `npm run bench -- --discord-http`: how fast the Discord interactions endpoint acknowledges while the models are busy.
 *
 * The endpoint, bot/ (SQLite in memory) and the in-process core with the builtin models run in this process, as a
 * single-process bot in HTTP interactions mode does. Discord is played by a worker thread (its own event loop, so its
 * timing is not held up by the bot's): it signs each interaction with the bench's Ed25519 key and sends rounds of 50
 * at once; a small REST sink answers the bot's webhook edits and follow-ups. Each round is 20 `/imagine` (which keep
 * the imagine lane busy) and 30 `/pictalk` status commands from 10 users; the figure is the time from sending a POST
 * to the end of its HTTP answer, over every interaction of every round, and each round checks that image jobs were
 * running when it was sent.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { corePort } from '../adapters/core.port.js';
import { startDiscordAdapter } from '../adapters/discord/discord.adapter.js';
import { Bot } from '../bot/bot.js';
import { SqliteStore } from '../bot/sqlite.store.js';
import { loadBenchCore } from './bench.core.js';
import { benchPrompts } from './bench.inputs.js';
import type { BenchOptions } from './bench.options.js';
import { percentile, summarize, type Summary } from './bench.stats.js';

export const DISCORD_HTTP_TARGETS = { discord_http_ack_p99_ms: 200 };

const APPLICATION_ID = '900000000000000001';
const GUILD_ID = '900000000000000002';
const CHANNEL_ID = '900000000000000003';
const CONCURRENT = 50;
const IMAGINE_PER_ROUND = 20;
const USERS = 10;

const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`); };

/** Answers every REST call of the bot (command registration, webhook edits and follow-ups) as Discord would, quickly. */
async function startRestSink(): Promise<{ server: Server; url: string; calls: () => number }> {
  let calls = 0;
  let next = 0n;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls += 1;
      next += 1n;
      const id = (((BigInt(Date.now()) - 1_420_070_400_000n) << 22n) | (next & 0xfffn)).toString();
      const body = req.url?.includes('/commands') ? '[]' : JSON.stringify({ id, channel_id: CHANNEL_ID, content: '', attachments: [], flags: 0 });
      res.writeHead(req.method === 'DELETE' ? 204 : 200, { 'content-type': 'application/json' }).end(req.method === 'DELETE' ? undefined : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`, calls: () => calls };
}

// Discord's side, in a worker thread: sign and send one round of interactions at once, and time each answer.
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPrivateKey, sign } = require('node:crypto');
const key = createPrivateKey({ key: Buffer.from(workerData.privateKey, 'base64'), format: 'der', type: 'pkcs8' });
parentPort.on('message', async (bodies) => {
  const times = await Promise.all(bodies.map(async (body) => {
    const ts = String(Math.floor(Date.now() / 1000));
    const signature = sign(null, Buffer.concat([Buffer.from(ts), Buffer.from(body)]), key).toString('hex');
    const start = performance.now();
    const res = await fetch(workerData.url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-signature-ed25519': signature, 'x-signature-timestamp': ts } });
    const text = await res.text();
    return { ms: performance.now() - start, status: res.status, type: res.status === 200 ? JSON.parse(text).type : null };
  }));
  parentPort.postMessage(times);
});`;

let counter = 0n;
function interaction(name: string, user: number, options: unknown[] = []): string {
  counter += 1n;
  const id = (((BigInt(Date.now()) - 1_420_070_400_000n) << 22n) | (counter & 0x3fffffn)).toString();
  return JSON.stringify({
    type: 2, id, application_id: APPLICATION_ID, token: `token-${id}`, version: 1, guild_id: GUILD_ID, channel_id: CHANNEL_ID,
    channel: { id: CHANNEL_ID, type: 0 }, locale: 'en-US', attachment_size_limit: 10 * 1024 * 1024,
    member: { user: { id: String(800000000000000000n + BigInt(user)), username: `user${user}`, global_name: null, discriminator: '0', avatar: null }, roles: [], permissions: '2147863616' },
    data: { id: '1', name, type: 1, options },
  });
}

export interface DiscordHttpResult {
  figures: { discord_http_ack_p50_ms: number; discord_http_ack_p99_ms: number };
  ack_ms: Summary & { p99: number };
  interactions: number;
  rounds: Array<{ p50_ms: number; max_ms: number; imagine_running_at_send: number; imagine_queued_at_send: number }>;
  answered_types: Record<string, number>;
  jobs_finished: number;
  rest_calls: number;
}

export async function benchDiscordHttp(options: BenchOptions): Promise<DiscordHttpResult> {
  const rounds = options.quick ? 2 : 6;
  const backend = { executionProvider: 'cpu' as const, ...(options.threads > 0 ? { intraOpThreads: options.threads } : {}) };
  const { core, close: closeCore } = await loadBenchCore(options, backend);
  const store = new SqliteStore(':memory:');
  const silent = { info: () => {}, warn: () => {}, error: () => {} };
  const bot = new Bot({
    store, core: corePort(core), logger: silent,
    config: { defaultDailyLimits: { imagine: 10_000, caption: 10_000 }, rateLimit: { capacity: 10_000, windowMs: 1000 } },
  });
  let finished = 0;
  const counted = { handle: async (...args: Parameters<Bot['handle']>) => { const outcome = await bot.handle(...args); finished += 1; return outcome; } };

  const sink = await startRestSink();
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const adapter = await startDiscordAdapter({
    token: 'bench-token', applicationId: APPLICATION_ID, apiUrl: sink.url, bot: counted, logger: silent, statusIntervalMs: 1500,
    http: { publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex'), port: 0, host: '127.0.0.1' },
  });
  const client = new Worker(CLIENT, {
    eval: true,
    workerData: { url: `http://127.0.0.1:${adapter.port}/discord/interactions`, privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64') },
  });
  const send = (bodies: string[]) => new Promise<Array<{ ms: number; status: number; type: number | null }>>((resolve) => {
    client.once('message', resolve);
    client.postMessage(bodies);
  });

  const prompts = benchPrompts(256);
  const all: number[] = [];
  const answered: Record<string, number> = {};
  const perRound: DiscordHttpResult['rounds'] = [];
  let sent = 0;
  try {
    // a warm-up round (models, JIT, connections) that also fills the imagine lane before the first timed round
    log('discord-http: warm-up round');
    await send(Array.from({ length: CONCURRENT }, (_, i) => i < IMAGINE_PER_ROUND
      ? interaction('imagine', i % USERS, [{ name: 'prompt', type: 3, value: prompts[i]! }])
      : interaction('pictalk', i % USERS)));
    sent += CONCURRENT;
    const busyBy = Date.now() + 30_000;
    while (core.stats().running.imagine === 0 && Date.now() < busyBy) await new Promise((resolve) => setTimeout(resolve, 50));
    for (let round = 0; round < rounds; round += 1) {
      const bodies = Array.from({ length: CONCURRENT }, (_, i) => i < IMAGINE_PER_ROUND
        ? interaction('imagine', (round + i) % USERS, [{ name: 'prompt', type: 3, value: prompts[(round * CONCURRENT + i) % prompts.length]! }])
        : interaction('pictalk', (round + i) % USERS));
      const stats = core.stats();
      const times = await send(bodies);
      sent += CONCURRENT;
      for (const t of times) answered[`${t.status}:${t.type}`] = (answered[`${t.status}:${t.type}`] ?? 0) + 1;
      const ms = times.map((t) => t.ms);
      all.push(...ms);
      const s = summarize(ms);
      perRound.push({ p50_ms: s.p50, max_ms: s.max, imagine_running_at_send: stats.running.imagine, imagine_queued_at_send: stats.queued.imagine });
      log(`discord-http: round ${round + 1}/${rounds}: ack p50 ${s.p50} ms, max ${s.max} ms; imagine jobs running ${stats.running.imagine}, queued ${stats.queued.imagine}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    // every accepted command ends in a reply: wait for them all, so the figure comes from a bot that kept up
    log('discord-http: waiting for every reply');
    const deadline = Date.now() + 300_000;
    while (finished < sent && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    await client.terminate();
    await adapter.stop();
    await closeCore();
    await store.close();
    await new Promise<void>((resolve) => sink.server.close(() => resolve()));
  }
  const ack = summarize(all);
  const p99 = Number(percentile([...all].sort((a, b) => a - b), 99).toFixed(2));
  return {
    figures: { discord_http_ack_p50_ms: ack.p50, discord_http_ack_p99_ms: p99 },
    ack_ms: { ...ack, p99 }, interactions: all.length, rounds: perRound, answered_types: answered, jobs_finished: finished, rest_calls: sink.calls(),
  };
}
