import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fork } from 'node:child_process';
import { SqliteStore } from '../../bot/sqlite.store.js';

// Jest runs this file as ESM; `import.meta` is not typed under its CommonJS view of tsconfig, hence the cast.
const here = fileURLToPath(new URL('.', (import.meta as unknown as { url: string }).url));

describe('reservations from several processes on one database file', () => {
  it('never pass the limit: the check and the insert are one IMMEDIATE transaction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-conc-'));
    try {
      const path = join(dir, 'db.sqlite');
      await new SqliteStore(path).close(); // migrate once up front
      const run = (worker: number) => new Promise<number>((resolve, reject) => {
        const child = fork(join(here, 'reserve.worker.ts'), [path, String(worker), '80', '100'], { execArgv: ['--import', 'tsx'] });
        child.once('message', (accepted) => resolve(accepted as number));
        child.once('error', reject);
        child.once('exit', (code) => { if (code !== 0) reject(new Error(`worker ${worker} exited with ${code}`)); });
      });
      const accepted = await Promise.all([0, 1].map(run));
      expect(accepted.reduce((a, b) => a + b, 0)).toBe(100);
      const store = new SqliteStore(path);
      expect((await store.usage('s1', 'u1', 'imagine', '2025-06-01')).reserved).toBe(100);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
