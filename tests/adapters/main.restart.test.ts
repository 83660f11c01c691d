/**
 * The single process (`pictalk start`, SQLite, the builtin models), restarted:
 * - with a job its previous run left unfinished: the job is refunded, and once the Slack adapter runs its requester
 *   hears, through the command's response_url kept in the job's route, that the restart lost it;
 * - after it was killed while it uploaded a finished picture: the restarted process draws the same picture again from
 *   the stored seed and posts it, once, charging once.
 * Real processes on the real store, against the fake Slack.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SqliteStore } from '../../bot/sqlite.store.js';
import { FakeSlack } from '../fakes/slack/fake-slack.js';
import { sendSigned } from '../fakes/slack/fake-slack.payloads.js';
import { freePort } from '../helpers/postgres.server.js';

const ROOT = process.cwd();
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const OWNED = pathToFileURL(join(ROOT, 'scripts/exit-with-owner.mjs')).href;
const MAIN = pathToFileURL(join(ROOT, 'adapters/main.ts')).href;
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(DISCORD_|SLACK_|PICTALK_)/.test(key)));

/** `pictalk start` on the SQLite file `db`, Slack over HTTP on `port` against `slack`; resolves once Slack is up. */
async function startProcess(dir: string, db: string, slack: FakeSlack, port: number): Promise<{ child: ChildProcess; log: () => string }> {
  const script = `import(${JSON.stringify(MAIN)}).then((m) => m.start([])).then((code) => process.exit(code));`;
  const child = spawn(process.execPath, ['--import', OWNED, '--import', TSX, '--input-type=module', '-e', script], {
    cwd: dir, stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...CLEAN_ENV, PICTALK_DB: db, SLACK_BOT_TOKEN: slack.botToken, SLACK_SIGNING_SECRET: slack.signingSecret, SLACK_API_URL: slack.apiUrl,
      PICTALK_SLACK_PORT: String(port) },
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  for (let i = 0; i < 600 && !/Slack adapter started/.test(out) && child.exitCode === null; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
  if (!/Slack adapter started/.test(out)) throw new Error(`pictalk did not start:\n${out}`);
  return { child, log: () => out };
}

const stopped = (child: ChildProcess, signal: NodeJS.Signals): Promise<unknown> => {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  return exited;
};

it('tells the requester of a job the last run left unfinished that the restart lost it, and refunds it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-restart-'));
  const slack = await FakeSlack.start();
  try {
    const db = join(dir, 'db.sqlite');
    const day = new Date().toISOString().slice(0, 10);
    const responseUrl = slack.responseUrl();
    // what the previous run left: a job accepted, queued, its quota reserved, and the way back to its requester
    const before = new SqliteStore(db);
    await before.acceptJob({
      id: 'lost-1', requestId: 'trigger-1', platform: 'slack', requesterId: slack.users.alice.id, spaceId: slack.teamId, channelId: 'C0GENERAL',
      kind: 'imagine', createdAt: Date.now() - 30_000,
      settings: { options: { prompt: 'a red circle' }, route: { platform: 'slack', channelId: 'C0GENERAL', userId: slack.users.alice.id, responseUrl } },
    }, { spaceId: slack.teamId, userId: slack.users.alice.id, kind: 'imagine', day, units: 1, limit: 10 });
    await before.close();

    const { child, log } = await startProcess(dir, db, slack, await freePort());
    try {
      for (let i = 0; i < 600 && slack.ephemerals.length === 0 && child.exitCode === null; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
      expect({ ephemerals: slack.ephemerals.map((e) => [e.via, e.text]), exit: child.exitCode }).toEqual({
        ephemerals: [['response_url', '⚠️ pictalk restarted before this job finished, so it was lost. Your quota was refunded. Please send it again.']],
        exit: null,
      });
      expect(log()).toMatch(/refunded 1 job\(s\) interrupted by a restart/);
    } finally {
      await stopped(child, 'SIGTERM');
    }
    const after = new SqliteStore(db);
    expect(await after.getJob('lost-1')).toMatchObject({ state: 'failed', errorCode: 'inference.failed' });
    expect(await after.usage(slack.teamId, slack.users.alice.id, 'imagine', day)).toEqual({ reserved: 0, charged: 0, refunded: 1 });
    await after.close();
  } finally {
    await slack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

it('posts, once, the picture a killed run had finished and was uploading: the same picture, drawn again, charged once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-restart-'));
  const slack = await FakeSlack.start();
  let running: ChildProcess | undefined;
  try {
    const db = join(dir, 'db.sqlite');
    const port = await freePort();
    const first = await startProcess(dir, db, slack, port);
    running = first.child;
    // the picture's share in the channel never completes: the process is killed while it waits
    const held = slack.holdNext('files.completeUploadExternal', (args) => args.channel_id !== undefined);
    const payload = slack.slashCommand('/imagine', 'a small red circle --seed 5');
    expect((await sendSigned(`http://127.0.0.1:${port}/slack/events`, 'slash_commands', payload, { secret: slack.signingSecret })).status).toBe(200);
    const call = await held;
    const files = JSON.parse(String(call.args.files)) as Array<{ id: string }>;
    const firstPicture = slack.uploads.get(files[0]!.id)!.data!;
    await stopped(first.child, 'SIGKILL');
    expect(slack.completions.filter((c) => c.channel_id !== undefined)).toEqual([]);

    const second = await startProcess(dir, db, slack, port);
    running = second.child;
    await slack.waitFor(() => slack.completions.some((c) => c.channel_id !== undefined), 60_000, 'the picture posted by the restarted process');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const shared = slack.completions.filter((c) => c.channel_id !== undefined);
    expect(shared).toHaveLength(1);
    expect(slack.uploads.get(shared[0]!.files[0]!.id)!.data).toEqual(firstPicture);
    expect(second.log()).toMatch(/answering a job whose reply the last run did not send/);
    await stopped(second.child, 'SIGTERM');
    running = undefined;

    const store = new SqliteStore(db);
    expect(await store.unansweredJobs(0)).toEqual([]);
    expect(await store.usage(slack.teamId, slack.users.alice.id, 'imagine', new Date().toISOString().slice(0, 10))).toEqual({ reserved: 0, charged: 1, refunded: 0 });
    await store.close();
  } finally {
    if (running) await stopped(running, 'SIGKILL');
    await slack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);
