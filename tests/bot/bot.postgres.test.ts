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

describe('bot/ when PostgreSQL becomes unreachable while it runs', () => {
  it('answers "temporarily unavailable" at once, writes nothing half, and works again when the database is back', async () => {
    const own = await startPostgres();          // a server of its own: this test stops it
    const store = await PostgresStore.open(await own.createDatabase(), { connectTimeoutMs: 1000 });
    try {
      const front = makeBot({ defaultDailyLimits: { imagine: 3, caption: 10 } }, { store });
      expect((await front.send({ name: 'imagine', options: { prompt: 'before' } }, actor('u1'), 'req-before')).reply.error).toBeUndefined();

      // down before a command: the reply says so, within a platform's three-second ack deadline
      await own.halt();
      const at = Date.now();
      const during = await front.send({ name: 'imagine', options: { prompt: 'during' } }, actor('u1'), 'req-during');
      expect(Date.now() - at).toBeLessThan(3000);
      expect(during.reply.error).toMatchObject({ code: 'store.unavailable', retryable: true });
      expect(during.reply.text).toMatch(/temporarily unavailable/);
      expect(front.core.of('imagine')).toHaveLength(1);          // no job started for it

      // down while a job runs: its result comes, its settlement cannot be written; the requester is told, and the job
      // is refunded as soon as the database answers again (not at the next restart)
      await own.start();
      front.core.manual = ['imagine'];                  // the alt text's caption jobs run on their own
      const running = front.send({ name: 'imagine', options: { prompt: 'mid-job' } }, actor('u1'), 'req-mid');
      const [, job] = await front.core.waitForJobs(2, 'imagine');
      await own.halt();
      job!.resolve();
      const mid = await running;
      expect(mid.reply.error).toMatchObject({ code: 'store.unavailable' });
      expect(mid.reply.text).toMatch(/temporarily unavailable/);
      await own.start();
      front.core.manual = false;

      // back: the job cut short refunded, nothing of the refused command written, the same request id runs now
      const day = '2025-06-01';
      const usage = (): Promise<unknown> => store.usage('space1', 'u1', 'imagine', day);
      for (let i = 0; i < 100 && (await usage() as { refunded: number }).refunded === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await usage()).toEqual({ reserved: 0, charged: 1, refunded: 1 });
      expect(await store.getJob(job!.id)).toMatchObject({ state: 'failed', errorCode: 'store.unavailable' });
      const again = await front.send({ name: 'imagine', options: { prompt: 'during' } }, actor('u1'), 'req-during');
      expect(again.reply.error).toBeUndefined();
      expect(await usage()).toEqual({ reserved: 0, charged: 2, refunded: 1 });
      expect(await front.bot.recoverInterrupted()).toBe(0);
    } finally {
      await store.close();
      await own.stop();
    }
  }, 60_000);
});
