/**
 * `pictalk start` end to end, on the builtin models: with no platform settings it runs the terminal adapter and
 * says how to configure Discord and Slack; a malformed setting stops start-up with a message naming it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from '../helpers/postgres.server.js';

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
