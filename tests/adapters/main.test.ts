/**
 * `pictalk start` end to end, on the builtin models: with no platform settings it runs the terminal adapter and
 * says how to configure Discord and Slack; a malformed setting stops start-up with a message naming it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, startPostgres } from '../helpers/postgres.server.js';
import { startRedis } from '../helpers/redis.server.js';

const ROOT = process.cwd();
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const ENTRY = pathToFileURL(join(ROOT, 'adapters/main.ts')).href;
const SCRIPT = `import(${JSON.stringify(ENTRY)}).then((m) => m.start([])).then((code) => process.exit(code));`;
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(DISCORD_|SLACK_|PICTALK_)/.test(key)));

describe('pictalk start', () => {
  it('refuses a malformed setting and names it', () => {
    const result = spawnSync(process.execPath, ['--import', TSX, '--input-type=module', '-e', SCRIPT], {
      cwd: ROOT, encoding: 'utf8', env: { ...CLEAN_ENV, DISCORD_TOKEN: 'x', PICTALK_METRICS_PORT: 'ninety' }, timeout: 60_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('DISCORD_APPLICATION_ID');
    expect(result.stderr).toContain('PICTALK_METRICS_PORT');
  }, 70_000);

  it('stops a front or worker without PICTALK_REDIS_URL, naming it, and an unknown role', () => {
    for (const [args, pattern] of [[['--role', 'worker'], /PICTALK_REDIS_URL/], [['--role', 'front'], /PICTALK_REDIS_URL/], [['--role', 'chef'], /--role/]] as const) {
      const script = `import(${JSON.stringify(ENTRY)}).then((m) => m.start(${JSON.stringify(args)})).then((code) => process.exit(code));`;
      const result = spawnSync(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], {
        cwd: ROOT, encoding: 'utf8', env: CLEAN_ENV, timeout: 60_000,
      });
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(pattern);
    }
  }, 70_000);

  it('stops at start-up naming PICTALK_DATABASE_URL when PostgreSQL cannot be reached', async () => {
    const port = await freePort();
    const result = spawnSync(process.execPath, ['--import', TSX, '--input-type=module', '-e', SCRIPT], {
      cwd: ROOT, encoding: 'utf8', env: { ...CLEAN_ENV, PICTALK_DATABASE_URL: `postgres://pictalk:secret@127.0.0.1:${port}/pictalk` }, timeout: 60_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('PICTALK_DATABASE_URL');
    expect(result.stderr).toContain(`127.0.0.1:${port}/pictalk`);
    expect(result.stderr).not.toContain('secret');
  }, 70_000);

  it('stops a worker whose Redis does not answer before it loads its models, naming PICTALK_REDIS_URL', async () => {
    const port = await freePort();
    const script = `import(${JSON.stringify(ENTRY)}).then((m) => m.start(['--role', 'worker'])).then((code) => process.exit(code));`;
    const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...CLEAN_ENV, PICTALK_REDIS_URL: `redis://127.0.0.1:${port}/0` },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(out).toMatch(/pictalk: PICTALK_REDIS_URL: Redis did not answer/);
    expect(out).not.toContain('models loaded');
  }, 60_000);

  it("answers /healthz of a front with its database's state: 503 while PostgreSQL is away, 200 again after", async () => {
    const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    const metricsPort = await freePort();
    const script = `import(${JSON.stringify(ENTRY)}).then((m) => m.start(['--role', 'front'])).then((code) => process.exit(code));`;
    const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...CLEAN_ENV, PICTALK_REDIS_URL: redis.url, PICTALK_DATABASE_URL: await postgres.createDatabase(), PICTALK_METRICS_PORT: String(metricsPort) },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    const health = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      return { status: response.status, body: await response.json() as Record<string, unknown> };
    };
    try {
      for (let i = 0; i < 600 && !/health on \/healthz/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/health on \/healthz/);
      expect(await health()).toEqual({ status: 200, body: expect.objectContaining({ status: 'ok', role: 'front', redis: true, database: true, healthy: true }) });
      await postgres.halt();
      expect(await health()).toEqual({ status: 503, body: expect.objectContaining({ status: 'unhealthy', role: 'front', redis: true, database: false, healthy: false }) });
      await postgres.start();
      expect(await health()).toEqual({ status: 200, body: expect.objectContaining({ database: true, healthy: true }) });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await Promise.all([redis.stop(), postgres.stop()]);
    }
  }, 120_000);

  (existsSync(join(ROOT, 'models/builtin/text-to-image/model_index.json')) ? it : it.skip)(
    'runs the terminal adapter on the builtin models when no platform is configured', async () => {
      const cwd = mkdtempSync(join(tmpdir(), 'pictalk-start-'));
      try {
        const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', SCRIPT], {
          cwd, env: { ...CLEAN_ENV, PICTALK_DB: join(cwd, 'db.sqlite') }, stdio: ['pipe', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
        child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString(); });
        const waitFor = async (pattern: RegExp): Promise<void> => {
          for (let i = 0; i < 600 && !pattern.test(out); i++) await new Promise((r) => setTimeout(r, 100));
          if (!pattern.test(out)) throw new Error(`timed out waiting for ${pattern} in:\n${out}`);
        };
        await waitFor(/No chat platform is configured/);
        expect(out).toContain('DISCORD_TOKEN');
        expect(out).toContain('SLACK_BOT_TOKEN');
        child.stdin.write('/imagine a big blue square --seed 3\n');
        await waitFor(/image: .*\.png/);
        child.stdin.write('/quit\n');
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
        expect(code).toBe(0);
        expect(readdirSync(join(cwd, 'pictalk-out')).some((f) => f.endsWith('.png'))).toBe(true);
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 90_000);
});
