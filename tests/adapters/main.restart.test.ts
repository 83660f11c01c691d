/**
 * The single process (`pictalk start`, SQLite), restarted with a job its previous run left unfinished: the job is
 * refunded, and once the Slack adapter runs its requester hears, through the command's response_url kept in the job's
 * route, that the restart lost it. A real process on the real store, against the fake Slack.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SqliteStore } from '../../bot/sqlite.store.js';
import { FakeSlack } from '../fakes/slack/fake-slack.js';
import { freePort } from '../helpers/postgres.server.js';

const ROOT = process.cwd();
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const OWNED = pathToFileURL(join(ROOT, 'scripts/exit-with-owner.mjs')).href;
const MAIN = pathToFileURL(join(ROOT, 'adapters/main.ts')).href;
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(DISCORD_|SLACK_|PICTALK_)/.test(key)));

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

    const script = `import(${JSON.stringify(MAIN)}).then((m) => m.start([])).then((code) => process.exit(code));`;
    const child = spawn(process.execPath, ['--import', OWNED, '--import', TSX, '--input-type=module', '-e', script], {
      cwd: dir, stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...CLEAN_ENV, PICTALK_DB: db, SLACK_BOT_TOKEN: slack.botToken, SLACK_SIGNING_SECRET: slack.signingSecret, SLACK_API_URL: slack.apiUrl,
        PICTALK_SLACK_PORT: String(await freePort()) },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 600 && slack.ephemerals.length === 0 && child.exitCode === null; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
      expect({ ephemerals: slack.ephemerals.map((e) => [e.via, e.text]), exit: child.exitCode }).toEqual({
        ephemerals: [['response_url', '⚠️ pictalk restarted before this job finished, so it was lost. Your quota was refunded. Please send it again.']],
        exit: null,
      });
      expect(out).toMatch(/refunded 1 job\(s\) interrupted by a restart/);
    } finally {
      child.kill('SIGTERM');
      await exited;
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
