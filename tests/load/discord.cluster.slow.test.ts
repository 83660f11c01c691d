/**
 * Discord HTTP interactions with the cluster roles, every part real: two `front` processes in HTTP interactions mode
 * (no gateway) behind the fake Discord, which signs every interaction and spreads them over both as a load balancer
 * would; one `worker` process on the builtin models; a private PostgreSQL and a private Redis.
 *
 * Checked: every interaction is acknowledged within Discord's 3 seconds and answered exactly once, even the one
 * delivered to both fronts; a front stopped with SIGTERM while its jobs run leaves them to the other front, which
 * answers them by editing the same deferred reply with the interaction's token (no front keeps state another needs).
 * Slow (about a minute): the models run for real on this machine's two cores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { FakeDiscord, type FakeInteraction, type FakeMember, type RestCall } from '../fakes/discord/fake-discord.js';
import { MessageFlag, OptionType } from '../fakes/discord/fake-discord.payloads.js';
import { freePort, startPostgres, type PostgresServer } from '../helpers/postgres.server.js';
import { startRedis, type RedisServer } from '../helpers/redis.server.js';
import { Processes, waitUntil } from './cluster.processes.js';
import { solidPng } from '../helpers/solid-png.js';

const EDIT = 'PATCH /webhooks/:app/:token/messages/@original';
const FOLLOW_UP = 'POST /webhooks/:app/:token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let postgres: PostgresServer;
let redis: RedisServer;
let discord: FakeDiscord;
let databaseUrl: string;
let dir: string;
const processes = new Processes({ dir: () => dir, redisUrl: () => redis.url });
const launch = (name: string, role: 'front' | 'worker', env: Record<string, string>) => processes.launch(name, role, env);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pictalk-discord-cluster-'));
  [postgres, redis, discord] = await Promise.all([startPostgres(), startRedis(), FakeDiscord.start()]);
  databaseUrl = await postgres.createDatabase('discord_cluster');
}, 120_000);

afterAll(async () => {
  await processes.stopAll();
  await discord?.stop();
  await redis?.stop();
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

const isStatus = (call: RestCall) => /^(⏳|🎨)/.test(String(call.body?.content ?? ''));
/** The interaction's answers: final edits of the deferred reply and text follow-ups (voice messages aside). */
const answers = (interaction: FakeInteraction) => discord.callsFor(interaction).filter((c) => (c.route === EDIT || c.route === FOLLOW_UP)
  && c.status === 200 && !isStatus(c) && !(Number(c.body?.flags ?? 0) & MessageFlag.IsVoiceMessage));

const frontEnv = (port: number): Record<string, string> => ({
  DISCORD_TOKEN: discord.token, DISCORD_APPLICATION_ID: discord.applicationId, DISCORD_API_URL: discord.apiUrl,
  DISCORD_PUBLIC_KEY: discord.publicKeyHex, PICTALK_DISCORD_HTTP_PORT: String(port), PICTALK_DISCORD_GUILD_ID: discord.guildId,
  PICTALK_DATABASE_URL: databaseUrl, PICTALK_DAILY_IMAGINE: '100', PICTALK_DAILY_CAPTION: '100', PICTALK_RATE_LIMIT: '1000/1s', PICTALK_REQUIRE_PLATFORM: '1',
});
/** The fronts' interaction endpoints, as the balancer knows them. */
let urls: string[] = [];

test('two HTTP fronts and a worker: interactions spread over both, one delivered twice, a front stopped mid-job; each answered once', async () => {
  const ports = [await freePort(), await freePort()];
  await launch('worker', 'worker', {});
  const fronts = await Promise.all(ports.map((port, i) => launch(`front-${i + 1}`, 'front', frontEnv(port))));
  urls = ports.map((port) => `http://127.0.0.1:${port}/discord/interactions`);
  discord.useHttpEndpoints(urls);
  for (const url of urls) expect((await discord.ping(url, 'bad')).status).toBe(401);

  const members: FakeMember[] = [discord.members.alice, discord.members.bob, discord.members.mod, discord.members.roleMod];
  const sent: FakeInteraction[] = [];
  const png = solidPng(48, [200, 40, 40]);
  for (let i = 0; i < 24; i += 1) {
    const by = members[i % members.length]!;
    if (i % 4 === 3) {
      const message = discord.userMessage(discord.members.bob, `what is this? ${i}`, [discord.hostFile(`photo-${i}.png`, png, 'image/png')]);
      sent.push(discord.sendMessageCommand('Caption image', message, by));
    } else {
      sent.push(discord.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: `a big ${['red', 'blue', 'green'][i % 3]} circle ${i}` }], by));
    }
  }
  sent.push(discord.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'delivered twice' }], discord.members.alice, undefined, { deliverTo: 'all' }));
  await Promise.all(sent.map((interaction) => discord.delivered(interaction)));

  // front 1 stops while jobs it accepted are still queued or running: the other front takes them over
  const stopping = fronts[0]!.child;
  const exited = new Promise((resolve) => stopping.once('exit', resolve));
  discord.useHttpEndpoints([urls[1]!]);
  stopping.kill('SIGTERM');
  await exited;
  // sent after the stop: the balancer has only front 2 left
  for (let i = 0; i < 4; i += 1) sent.push(discord.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: `after the stop ${i}` }], members[i]!));
  await Promise.all(sent.slice(-4).map((interaction) => discord.delivered(interaction)));

  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    // a miss is reported below with what each interaction got, rather than as a bare time-out
    await waitUntil(async () => sent.every((interaction) => answers(interaction).length > 0), 120_000).catch(() => undefined);
    await waitUntil(async () => Number((await db.query("SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running')")).rows[0].n) === 0, 30_000).catch(() => undefined);
    await sleep(1500);
    const problems: string[] = [];
    for (const interaction of sent) {
      const deliveries = interaction.deliveries ?? [];
      if (!deliveries.some((d) => d.outcome === 'accepted' && d.status === 200 && d.ackMs < 3000)) problems.push(`${interaction.id}: not acknowledged in time (${JSON.stringify(deliveries.map((d) => [d.status, d.outcome, d.ackMs]))})`);
      const got = answers(interaction);
      if (got.length !== 1) {
        const rows = (await db.query('SELECT id, state, error_code FROM jobs WHERE request_id = $1', [interaction.id])).rows as unknown[];
        problems.push(`${interaction.id} (via ${interaction.delivery?.url}): ${got.length} answers; calls ${discord.callsFor(interaction).map((c) => `${c.route} ${c.status}`).join(', ')}; job ${JSON.stringify(rows)}`);
      }
      else if (got[0]!.route === FOLLOW_UP && !(Number(got[0]!.body?.flags ?? 0) & MessageFlag.Ephemeral)) problems.push(`${interaction.id}: a public follow-up instead of the edit`);
    }
    if (problems.length > 0) {
      processes.print(/follow/, 40);
    }
    expect(problems).toEqual([]);
    const images = sent.filter((interaction) => answers(interaction)[0]!.files.length > 0).length;
    expect(images).toBeGreaterThanOrEqual(20);
    // the twice-delivered interaction: one job, and one request id claimed
    const twice = sent[24]!;
    expect(twice.deliveries!.map((d) => d.status)).toEqual([200, 200]);
    expect(Number((await db.query('SELECT count(*) AS n FROM jobs WHERE request_id = $1', [twice.id])).rows[0].n)).toBe(1);
    // the stopped front's jobs were answered from front 2, through the interaction's token: edits of the same reply
    expect(processes.all.find((p) => p.name === 'front-2')!.log.join('')).toMatch(/following a job whose front stopped/);
    expect(discord.calls.filter((c) => c.route === 'POST /channels/:channel/messages')).toEqual([]);
  } finally {
    await db.end();
  }
}, 300_000);

test('a front killed while it sends a reply: the front that lives sends it, once, and the quota is charged once', async () => {
  // front 2 (and the worker) of the test above are still running; a third front takes this one interaction
  const port = await freePort();
  const dying = await launch('front-3', 'front', frontEnv(port));
  const url = `http://127.0.0.1:${port}/discord/interactions`;
  // its final reply (the edit that carries the picture) never completes: the upload hangs, and the front is killed
  const held = discord.holdNext(EDIT, (call) => call.files.length > 0);
  discord.useHttpEndpoints([url]);
  const interaction = discord.sendChatInput('imagine', [{ name: 'prompt', type: OptionType.String, value: 'a small blue star' }], discord.members.bob);
  await discord.delivered(interaction);
  discord.useHttpEndpoints([urls[1]!]);
  const call = await held;
  expect(call.interactionId).toBe(interaction.id);
  const exited = new Promise((resolve) => dying.child.once('exit', resolve));
  dying.child.kill('SIGKILL');
  await exited;

  // the front that lives takes the settled, unanswered job over once the killed front's lease lapses (about 10 s)
  await waitUntil(async () => answers(interaction).length > 0, 60_000);
  await sleep(1500);
  const got = answers(interaction);
  expect(got).toHaveLength(1);
  expect(got[0]!.route).toBe(EDIT);
  expect(got[0]!.files).toHaveLength(1);
  expect(processes.all.find((p) => p.name === 'front-2')!.log.join('')).toMatch(/answering a job whose front stopped before its reply went out/);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const [job] = (await db.query('SELECT id, state, answered_at FROM jobs WHERE request_id = $1', [interaction.id])).rows as Array<{ id: string; state: string; answered_at: string | null }>;
    expect(job!.state).toBe('succeeded');
    expect(job!.answered_at).not.toBeNull();
    const ledger = (await db.query('SELECT state, units FROM usage_ledger WHERE job_id = $1', [job!.id])).rows;
    expect(ledger).toEqual([{ state: 'charged', units: 1 }]);
  } finally {
    await db.end();
  }
}, 120_000);
