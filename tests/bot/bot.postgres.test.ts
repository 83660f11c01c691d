/**
 * bot/ on PostgreSQL with two bots sharing one database, as two front processes would: a user's daily quota holds
 * across both, a request id delivered to both runs once, a moderator's change on one is seen by the other, and a
 * restart refunds what was interrupted. (The store contract itself: store.postgres.test.ts.)
 */
import { PostgresStore } from '../../bot/postgres.store.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.server.js';
import { actor, makeBot, moderator, RecordingConversation, request, type TestBot } from './helpers.js';

let server: PostgresServer;
beforeAll(async () => { server = await startPostgres(); }, 120_000);
afterAll(async () => { await server?.stop(); });

async function twoFronts(): Promise<[TestBot, TestBot]> {
  const url = await server.createDatabase();
  const [a, b] = await Promise.all([PostgresStore.open(url), PostgresStore.open(url)]);
  return [makeBot({ defaultDailyLimits: { imagine: 3, caption: 10 } }, { store: a }), makeBot({ defaultDailyLimits: { imagine: 3, caption: 10 } }, { store: b })];
}

describe('bot/ on PostgreSQL, two fronts', () => {
  let fronts: TestBot[] = [];
  afterEach(async () => { await Promise.all(fronts.map((t) => t.store.close())); fronts = []; });

  it('holds a user to the daily quota across both fronts', async () => {
    fronts = await twoFronts();
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      fronts[i % 2]!.send({ name: 'imagine', options: { prompt: `p${i}` } }, actor('u1'))));
    const codes = replies.map((c) => c.reply.error?.code ?? 'ok');
    expect(codes.filter((c) => c === 'ok')).toHaveLength(3);
    expect(codes.filter((c) => c === 'quota.exceeded')).toHaveLength(5);
    expect(await fronts[1]!.store.usage('space1', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 3, refunded: 0 });
  });

  it('runs a request delivered to both fronts once, with one reply', async () => {
    fronts = await twoFronts();
    const req = request({ name: 'imagine', options: { prompt: 'twice' } }, actor('u2'), 'interaction-77');
    const conversations = [new RecordingConversation(), new RecordingConversation()];
    const outcomes = await Promise.all(fronts.map((t, i) => t.bot.handle(req, conversations[i]!)));
    expect(outcomes.filter((o) => o.duplicate)).toHaveLength(1);
    expect(conversations.flatMap((c) => c.replies)).toHaveLength(1);
    expect(fronts[0]!.core.of('imagine').length + fronts[1]!.core.of('imagine').length).toBe(1);
  });

  it('sees a moderator change made on the other front', async () => {
    fronts = await twoFronts();
    await fronts[0]!.send({ name: 'quota.set', target: { kind: 'user', id: 'u3' }, kind: 'imagine', limit: 1 }, moderator());
    await fronts[0]!.send({ name: 'blocklist.add', pattern: 'forbidden' }, moderator());
    expect((await fronts[1]!.send({ name: 'imagine', options: { prompt: 'a forbidden word' } }, actor('u3'))).reply.error?.code).toBe('content.blocked');
    expect((await fronts[1]!.send({ name: 'imagine', options: { prompt: 'ok' } }, actor('u3'))).reply.error).toBeUndefined();
    expect((await fronts[1]!.send({ name: 'imagine', options: { prompt: 'again' } }, actor('u3'))).reply.error?.code).toBe('quota.exceeded');
    expect((await fronts[1]!.store.listAudit('space1')).map((e) => e.action)).toEqual(['blocklist.add', 'quota.set']);
  });

  it('refunds, after a restart, the jobs a stopped process had accepted', async () => {
    fronts = await twoFronts();
    fronts[0]!.core.manual = true;
    void fronts[0]!.send({ name: 'imagine', options: { prompt: 'lost', count: 2 } }, actor('u4'));
    await fronts[0]!.core.waitForJobs(1);
    expect(await fronts[1]!.store.usage('space1', 'u4', 'imagine', '2025-06-01')).toEqual({ reserved: 2, charged: 0, refunded: 0 });
    expect(await fronts[1]!.bot.recoverInterrupted()).toBe(1);
    expect(await fronts[1]!.store.usage('space1', 'u4', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 0, refunded: 2 });
  });
});
