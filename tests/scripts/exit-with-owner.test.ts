/**
 * The pictalk processes that tests and the cluster bench start end with their owner (scripts/exit-with-owner.mjs):
 * a process started with a stdin pipe from its owner stops as on SIGTERM when the owner is killed; one started without
 * the pipe outlives it, which is what the preload prevents.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const OWNED = pathToFileURL(join(process.cwd(), 'scripts/exit-with-owner.mjs')).href;

/** Whether the process runs (a zombie, ended and not yet reaped by whoever adopted it, does not). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/**
 * An owner process that starts a child (with the preload; its stdin a pipe, or /dev/null) and prints the child's pid;
 * the child notes a SIGTERM in `marker` and exits. The owner is then killed with SIGKILL.
 */
async function orphan(stdin: 'pipe' | 'ignore', marker: string): Promise<number> {
  const child = `process.on('SIGTERM', () => { require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'term'); process.exit(0); }); setInterval(() => undefined, 1000);`;
  const owner = `const { spawn } = require('node:child_process');
const c = spawn(process.execPath, ['--import', ${JSON.stringify(OWNED)}, '-e', ${JSON.stringify(child)}], { stdio: [${JSON.stringify(stdin)}, 'ignore', 'ignore'] });
setTimeout(() => process.stdout.write(c.pid + '\\n'), 500);
setInterval(() => undefined, 1000);`;
  const proc = spawn(process.execPath, ['-e', owner], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve) => proc.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
  expect(alive(pid)).toBe(true);
  proc.kill('SIGKILL');
  await new Promise((resolve) => proc.once('exit', resolve));
  return pid;
}

describe('a process started with scripts/exit-with-owner.mjs', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'pictalk-owned-')); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it('stops as on SIGTERM when its owner is killed', async () => {
    const marker = join(dir, 'piped');
    const pid = await orphan('pipe', marker);
    try {
      for (let i = 0; i < 100 && alive(pid); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(alive(pid)).toBe(false);
      expect(readFileSync(marker, 'utf8')).toBe('term');
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');     // a failed check leaves nothing running
    }
  }, 30_000);

  it('without a pipe from its owner, outlives it (what the pipe is for)', async () => {
    const marker = join(dir, 'unpiped');
    const pid = await orphan('ignore', marker);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      expect(alive(pid)).toBe(true);
      expect(existsSync(marker)).toBe(false);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  }, 30_000);
});
