/** Run with `node --import tsx`: another process on the same database file on the same database file: tries `attempts` reservations, reports how many were accepted. */
import { SqliteStore } from '../../bot/sqlite.store.js';

const [path = '', worker, attempts, limit] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const store = new SqliteStore(path);
let accepted = 0;
for (let i = 0; i < attempts; i += 1) {
  const id = `w${worker}-${i}`;
  try {
    await store.acceptJob(
      { id, requestId: id, platform: 'slack', requesterId: 'u1', spaceId: 's1', channelId: 'c', kind: 'imagine', settings: {}, createdAt: i },
      { spaceId: 's1', userId: 'u1', kind: 'imagine', day: '2025-06-01', units: 1, limit },
    );
    accepted += 1;
  } catch (error) {
    if ((error as { code?: string }).code !== 'quota.exceeded') throw error;
  }
}
await store.close();
process.send?.(accepted);
