/**
 * PostgreSQL round trips per command: the real Bot on the real PostgresStore over a private PostgreSQL that logs
 * every statement (`log_statement = all` on the database), a fake queue that answers at once. Counts the statements
 * PostgreSQL received per /imagine (accepted and charged), per /imagine refused by the quota, and per caption.
 *
 *   npx tsx scripts/measure/store-round-trips.ts [commands per kind, default 50]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresStore } from '../../bot/postgres.store.js';
import { actor, makeBot } from '../../tests/bot/helpers.js';
import { solidPng } from '../../tests/helpers/solid-png.js';
import { startPostgres } from '../../tests/helpers/postgres.server.js';

const n = Number(process.argv[2] ?? 50);
const server = await startPostgres();
try {
  const url = await server.createDatabase('trips', { logStatements: true });
  const store = await PostgresStore.open(url);
  const { send } = makeBot({ defaultDailyLimits: { imagine: n, caption: 10 * n } }, { store });
  const log = join(server.dir, 'server.log');
  const statements = (): number => (readFileSync(log, 'utf8').match(/LOG: {2}(statement|execute [^:]*):/g) ?? []).length;
  await send({ name: 'imagine', options: { prompt: 'warm up' } }, actor('warm'));
  const png = solidPng(32, [200, 40, 40]);
  const attachment = { name: 'photo.png', contentType: 'image/png', size: png.length, fetch: async () => png };
  const measure = async (what: string, run: (i: number) => Promise<unknown>): Promise<void> => {
    const before = statements();
    for (let i = 0; i < n; i += 1) await run(i);
    await new Promise((resolve) => setTimeout(resolve, 300));      // the log is written asynchronously
    process.stdout.write(`${what}: ${((statements() - before) / n).toFixed(1)} statements per command (${n} commands)\n`);
  };
  await measure('/imagine, accepted and charged', (i) => send({ name: 'imagine', options: { prompt: `p${i}` } }, actor('u1')));
  await measure('/imagine, refused by the quota', (i) => send({ name: 'imagine', options: { prompt: `q${i}` } }, actor('u1')));
  await measure('caption, accepted and charged', (i) => send({ name: 'caption', attachment, voice: i % 2 === 0 }, actor('u2')));
  await store.close();
} finally {
  await server.stop();
}
