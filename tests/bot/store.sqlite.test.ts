import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../bot/sqlite.store.js';
import { storeContract } from './store.contract.js';

// A file, not ':memory:', so that `another` opens a second connection to the same data.
const folders: string[] = [];
afterAll(() => { for (const dir of folders) rmSync(dir, { recursive: true, force: true }); });

storeContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pictalk-store-'));
  folders.push(dir);
  const path = join(dir, 'store.sqlite');
  return { store: new SqliteStore(path), another: async () => new SqliteStore(path) };
});
