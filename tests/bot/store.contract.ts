/**
 * The BotStore contract, one suite run against every implementation (store.sqlite.test.ts, store.postgres.test.ts).
 * `open` gives a fresh, empty store and a way to open more connections to the same data, for the races.
 */
import type { BotStore, NewJob, Reservation } from '../../bot/store.js';

export interface StoreUnderTest {
  store: BotStore;
  /** Another store on the same data: another connection (SQLite) or another pool (PostgreSQL). */
  another(): Promise<BotStore>;
}

const DAY = '2025-06-01';
const job = (id: string, extra: Partial<NewJob> = {}): NewJob => ({
  id, requestId: `r-${id}`, platform: 'discord', requesterId: 'u1', spaceId: 's1', channelId: 'c1', kind: 'imagine',
  settings: { options: { prompt: 'a red circle' } }, createdAt: 1, ...extra,
});
const reservation = (units: number, limit: number, extra: Partial<Reservation> = {}): Reservation =>
  ({ spaceId: 's1', userId: 'u1', kind: 'imagine', day: DAY, units, limit, ...extra });

export function storeContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`${name}: the BotStore contract`, () => {
    let t: StoreUnderTest;
    const extra: BotStore[] = [];
    const another = async (): Promise<BotStore> => {
      const store = await t.another();
      extra.push(store);
      return store;
    };
    beforeEach(async () => { t = await open(); });
    afterEach(async () => {
      await Promise.all(extra.splice(0).map((store) => store.close()));
      await t.store.close();
    });

    it('answers a ping while its database answers, and says store.unavailable once it is closed', async () => {
      await expect(t.store.ping()).resolves.toBeUndefined();
      const other = await t.another();
      await expect(other.ping()).resolves.toBeUndefined();
      await other.close();
      await expect(other.ping()).rejects.toMatchObject({ code: 'store.unavailable' });
    });

    it('reserves only within the limit and writes nothing when it refuses', async () => {
      const { store } = t;
      await store.acceptJob(job('a'), reservation(3, 4));
      await expect(store.acceptJob(job('b'), reservation(2, 4))).rejects.toMatchObject(
        { code: 'quota.exceeded', details: expect.objectContaining({ used: 3, limit: 4, units: 2, kind: 'imagine', day: DAY }) });
      expect(await store.getJob('b')).toBeUndefined();
      await store.acceptJob(job('c'), reservation(1, 4));
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 4, charged: 0, refunded: 0 });
      // other users, kinds and days have their own room
      await store.acceptJob(job('d', { requesterId: 'u2' }), reservation(4, 4, { userId: 'u2' }));
      await store.acceptJob(job('e', { kind: 'caption' }), reservation(1, 1, { kind: 'caption' }));
      await store.acceptJob(job('f'), reservation(4, 4, { day: '2025-06-02' }));
    });

    it('counts refunded units as room again, charged ones not', async () => {
      const { store } = t;
      await store.acceptJob(job('a'), reservation(2, 3));
      await store.settleJob('a', 'refunded', 2);
      await store.acceptJob(job('b'), reservation(3, 3));
      await store.settleJob('b', 'charged', 3);
      await expect(store.acceptJob(job('c'), reservation(1, 3))).rejects.toMatchObject({ code: 'quota.exceeded' });
    });

    it('settles a reservation exactly once', async () => {
      const { store } = t;
      await store.acceptJob(job('a'), reservation(2, 10));
      expect(await store.settleJob('a', 'charged', 2)).toBe(true);
      expect(await store.settleJob('a', 'refunded', 3)).toBe(false);
      expect(await store.settleJob('a', 'charged', 3)).toBe(false);
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 2, refunded: 0 });
      expect(await store.settleJob('no-such-job', 'charged', 3)).toBe(false);
    });

    it('charges part of a reservation and gives the rest back to the day (images the safety checker withheld)', async () => {
      const { store } = t;
      await store.acceptJob(job('a'), reservation(4, 5));
      expect(await store.settleJob('a', 'charged', 2, { units: 1, note: '3 of 4 images withheld by the safety checker' })).toBe(true);
      expect(await store.settleJob('a', 'refunded', 3)).toBe(false);
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 1, refunded: 0 });
      // 4 of the limit 5 are room again
      await store.acceptJob(job('b'), reservation(4, 5));
      await expect(store.acceptJob(job('c'), reservation(1, 5))).rejects.toMatchObject({ code: 'quota.exceeded' });
      // never more than was reserved
      expect(await store.settleJob('b', 'charged', 4, { units: 9, note: 'none withheld' })).toBe(true);
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 5, refunded: 0 });
      await expect(store.settleJob('c', 'charged', 5, { units: 0, note: 'all withheld' })).rejects.toMatchObject({ code: 'input.invalid' });
      await expect(store.settleJob('c', 'refunded', 5, { units: 1, note: 'a refund is whole' })).rejects.toMatchObject({ code: 'input.invalid' });
    });

    it('gives a charge back once, and only a charge', async () => {
      const { store } = t;
      await store.acceptJob(job('a'), reservation(3, 4));
      expect(await store.refundCharge('a', 2)).toBe(false);            // reserved, not charged
      expect(await store.settleJob('a', 'charged', 2, { units: 2, note: '1 of 3 images withheld by the safety checker' })).toBe(true);
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 2, refunded: 0 });
      await expect(store.acceptJob(job('b'), reservation(3, 4))).rejects.toMatchObject({ code: 'quota.exceeded' });
      // from two connections at once: one gives it back
      const other = await another();
      expect((await Promise.all([store.refundCharge('a', 3), other.refundCharge('a', 3)])).filter(Boolean)).toEqual([true]);
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 0, refunded: 2 });
      await store.acceptJob(job('b'), reservation(4, 4));               // the room is back
      expect(await store.settleJob('b', 'refunded', 4)).toBe(true);
      expect(await store.refundCharge('b', 5)).toBe(false);             // refunded already
      expect(await store.refundCharge('no-such-job', 5)).toBe(false);
      expect(await store.settleJob('a', 'charged', 6)).toBe(false);     // and settling again does nothing
    });

    it('keeps a job as it was given and as it changes', async () => {
      const { store } = t;
      await store.acceptJob(job('a', { parentJobId: 'p', createdAt: 5 }), reservation(1, 10));
      expect(await store.getJob('a')).toEqual({
        id: 'a', requestId: 'r-a', platform: 'discord', requesterId: 'u1', spaceId: 's1', channelId: 'c1', kind: 'imagine',
        settings: { options: { prompt: 'a red circle' } }, state: 'queued', messageIds: [], parentJobId: 'p', createdAt: 5, updatedAt: 5,
      });
      await store.updateJob('a', { state: 'running' }, 6);
      await store.updateJob('a', { state: 'failed', errorCode: 'job.timeout', settings: { options: { prompt: 'b' }, note: 'ü ✓' } }, 7);
      await store.setJobMessages('a', ['m1', 'm2'], 8);
      expect(await store.getJob('a')).toMatchObject({
        state: 'failed', errorCode: 'job.timeout', settings: { options: { prompt: 'b' }, note: 'ü ✓' }, messageIds: ['m1', 'm2'], updatedAt: 8,
      });
      expect(await store.getJob('missing')).toBeUndefined();
    });

    it('replaces the route of a job and keeps the rest of its settings', async () => {
      const { store } = t;
      await store.acceptJob(job('a', { settings: { options: { prompt: 'ü' }, route: { platform: 'slack', channelId: 'C1' } } }), reservation(1, 10));
      const before = (await store.getJob('a'))!.updatedAt;
      await store.setJobRoute('a', { platform: 'slack', channelId: 'C1', status: { channel: 'C1', ts: '1.000002' } });
      expect(await store.getJob('a')).toMatchObject({
        settings: { options: { prompt: 'ü' }, route: { platform: 'slack', channelId: 'C1', status: { channel: 'C1', ts: '1.000002' } } }, updatedAt: before,
      });
      await store.setJobRoute('missing', { platform: 'slack' });
      expect(await store.getJob('missing')).toBeUndefined();
    });

    it('fails and refunds the jobs a previous process left queued or running, and returns them as they were left', async () => {
      const { store } = t;
      await store.acceptJob(job('a', { createdAt: 1 }), reservation(2, 10));
      await store.acceptJob(job('b', { createdAt: 2 }), reservation(1, 10));
      await store.acceptJob(job('c', { createdAt: 3 }), reservation(1, 10));
      await store.settleJob('b', 'charged', 2);
      await store.updateJob('b', { state: 'succeeded' }, 2);
      await store.updateJob('c', { state: 'running' }, 2);
      const recovered = await store.recoverInterrupted(5);
      expect(recovered.map((j) => [j.id, j.state])).toEqual([['a', 'queued'], ['c', 'running']]);
      expect(await store.getJob('a')).toMatchObject({ state: 'failed', errorCode: 'inference.failed', updatedAt: 5 });
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 0, charged: 1, refunded: 3 });
      expect(await store.recoverInterrupted(6)).toEqual([]);
    });

    it('remembers when a job was answered, and lists the settled jobs whose reply never went out', async () => {
      const { store } = t;
      for (const [id, at] of [['a', 1], ['b', 2], ['c', 3], ['d', 4]] as const) await store.acceptJob(job(id, { createdAt: at }), reservation(1, 10));
      await store.settleJob('a', 'charged', 5);
      await store.updateJob('a', { state: 'succeeded' }, 5);
      await store.settleJob('b', 'refunded', 6);
      await store.updateJob('b', { state: 'failed', errorCode: 'job.timeout' }, 6);
      await store.updateJob('c', { state: 'cancelled', errorCode: 'job.cancelled' }, 2);
      // d runs on: unfinished, not unanswered
      await store.updateJob('d', { state: 'running' }, 6);
      expect((await store.unansweredJobs(0)).map((j) => [j.id, j.state])).toEqual([['a', 'succeeded'], ['b', 'failed'], ['c', 'cancelled']]);
      // settled before `since`: too old to answer from a kept result
      expect((await store.unansweredJobs(5)).map((j) => j.id)).toEqual(['a', 'b']);
      expect((await store.getJob('a'))?.answeredAt).toBeUndefined();
      await store.markAnswered('a', 7, ['m1']);
      await store.markAnswered('b', 8);
      await store.markAnswered('a', 9, ['m2']);
      expect(await store.getJob('a')).toMatchObject({ answeredAt: 7, messageIds: ['m2'] });
      expect(await store.getJob('b')).toMatchObject({ answeredAt: 8, messageIds: [] });
      expect((await store.unansweredJobs(0)).map((j) => j.id)).toEqual(['c']);
      // jobs failed because their process went away are never answered: nobody can reach their requester now
      await store.recoverInterrupted(10);
      expect(await store.getJob('d')).toMatchObject({ state: 'failed', answeredAt: 10 });
      expect((await store.unansweredJobs(0)).map((j) => j.id)).toEqual(['c']);
      await store.markAnswered('missing', 11);
      expect(await store.getJob('missing')).toBeUndefined();
    });

    it('fails only the named jobs when told which are lost', async () => {
      const { store } = t;
      await store.acceptJob(job('a', { createdAt: 1 }), reservation(1, 10));
      await store.acceptJob(job('b', { createdAt: 2 }), reservation(1, 10));
      await store.updateJob('b', { state: 'running' }, 2);
      expect((await store.unfinishedJobs()).map((j) => [j.id, j.state])).toEqual([['a', 'queued'], ['b', 'running']]);
      expect((await store.recoverInterrupted(5, ['a', 'gone'])).map((j) => j.id)).toEqual(['a']);
      expect((await store.unfinishedJobs()).map((j) => j.id)).toEqual(['b']);
      expect(await store.recoverInterrupted(6, ['a'])).toEqual([]);
      expect(await store.getJob('b')).toMatchObject({ state: 'running' });
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 1, charged: 0, refunded: 1 });
    });

    it('claims a request id once and forgets old ones', async () => {
      const { store } = t;
      const r = { id: 'evt-1', spaceId: 's1', userId: 'u1', command: 'imagine', receivedAt: 1 };
      expect(await store.claimRequest(r)).toBe(true);
      expect(await store.claimRequest(r)).toBe(false);
      expect(await store.claimRequest({ ...r, id: 'evt-2', receivedAt: 10 })).toBe(true);
      expect(await store.pruneRequests(5)).toBe(1);
      expect(await store.claimRequest(r)).toBe(true);
      expect(await store.claimRequest({ ...r, id: 'evt-2' })).toBe(false);
    });

    it('keeps limits per space, target and kind, and lists them in order', async () => {
      const { store } = t;
      await store.setLimit('s1', { kind: 'default' }, 'imagine', 5, 'mod', 1);
      await store.setLimit('s1', { kind: 'role', id: 'R' }, 'caption', 7, 'mod', 2);
      await store.setLimit('s1', { kind: 'user', id: 'u1' }, 'imagine', 1, 'mod', 3);
      await store.setLimit('s1', { kind: 'user', id: 'u1' }, 'imagine', 2, 'mod2', 4);
      await store.setLimit('s2', { kind: 'default' }, 'imagine', 9, 'mod', 1);
      expect(await store.getLimit('s1', { kind: 'user', id: 'u1' }, 'imagine')).toBe(2);
      expect(await store.getLimit('s1', { kind: 'user', id: 'u1' }, 'caption')).toBeUndefined();
      expect(await store.getLimit('s2', { kind: 'default' }, 'imagine')).toBe(9);
      expect(await store.listLimits('s1')).toEqual([
        { target: { kind: 'default' }, kind: 'imagine', limit: 5, updatedBy: 'mod', updatedAt: 1 },
        { target: { kind: 'role', id: 'R' }, kind: 'caption', limit: 7, updatedBy: 'mod', updatedAt: 2 },
        { target: { kind: 'user', id: 'u1' }, kind: 'imagine', limit: 2, updatedBy: 'mod2', updatedAt: 4 },
      ]);
    });

    it('resets a day by refunding its charged units, leaving reserved ones to settle', async () => {
      const { store } = t;
      await store.acceptJob(job('a'), reservation(2, 10));
      await store.acceptJob(job('b'), reservation(3, 10));
      await store.settleJob('a', 'charged', 2);
      expect(await store.resetUsage('s1', 'u1', DAY, 'reset by mod', 3)).toBe(1);
      expect(await store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 3, charged: 0, refunded: 2 });
      expect(await store.settleJob('b', 'charged', 4)).toBe(true);
    });

    it('keeps a blocklist per space without duplicates', async () => {
      const { store } = t;
      expect(await store.addBlockPattern('s1', 'zebra', 'mod', 2)).toBe(true);
      expect(await store.addBlockPattern('s1', 'apple', 'mod', 2)).toBe(true);
      expect(await store.addBlockPattern('s1', 'Zebra', 'mod', 1)).toBe(true);
      expect(await store.addBlockPattern('s1', 'zebra', 'mod', 3)).toBe(false);
      expect(await store.addBlockPattern('s2', 'zebra', 'mod', 3)).toBe(true);
      expect((await store.listBlockPatterns('s1')).map((e) => e.pattern)).toEqual(['Zebra', 'apple', 'zebra']);
      expect(await store.removeBlockPattern('s1', 'zebra')).toBe(true);
      expect(await store.removeBlockPattern('s1', 'zebra')).toBe(false);
      expect(await store.listBlockPatterns('s1')).toEqual([{ pattern: 'Zebra', addedBy: 'mod', addedAt: 1 }, { pattern: 'apple', addedBy: 'mod', addedAt: 2 }]);
    });

    it('keeps the audit log per space, newest first, with its values as they were', async () => {
      const { store } = t;
      await store.audit({ spaceId: 's1', actorId: 'm', action: 'quota.set', target: 'user u1 imagine', before: null, after: { limit: 3 }, at: 1 });
      await store.audit({ spaceId: 's1', actorId: 'm', action: 'blocklist.add', target: 'x', before: undefined, after: ['x', 2], at: 2 });
      await store.audit({ spaceId: 's2', actorId: 'm', action: 'other', target: 'y', before: 1, after: 2, at: 3 });
      const entries = await store.listAudit('s1');
      expect(entries.map(({ id: _id, ...rest }) => rest)).toEqual([
        { spaceId: 's1', actorId: 'm', action: 'blocklist.add', target: 'x', before: undefined, after: ['x', 2], at: 2 },
        { spaceId: 's1', actorId: 'm', action: 'quota.set', target: 'user u1 imagine', before: null, after: { limit: 3 }, at: 1 },
      ]);
      expect(entries[0]!.id).toBeGreaterThan(entries[1]!.id);
      expect(await store.listAudit('s1', 1)).toHaveLength(1);
    });

    it('lists settings by prefix and deletes with undefined', async () => {
      const { store } = t;
      await store.setSetting('s1', 'autocaption:C1', '1', 'mod', 1);
      await store.setSetting('s1', 'autocaption:C2', '1', 'mod', 1);
      await store.setSetting('s1', 'autocaption%', 'x', 'mod', 1);
      await store.setSetting('s1', 'other', 'x', 'mod', 1);
      await store.setSetting('s2', 'autocaption:C3', '1', 'mod', 1);
      await store.setSetting('s1', 'autocaption:C2', undefined, 'mod', 2);
      await store.setSetting('s1', 'autocaption:C1', '0', 'mod', 3);
      expect(await store.listSettings('s1', 'autocaption:')).toEqual([{ key: 'autocaption:C1', value: '0' }]);
      expect(await store.getSetting('s1', 'autocaption:C2')).toBeUndefined();
      expect(await store.getSetting('s1', 'other')).toBe('x');
    });

    it('lets exactly 10 of 50 reservations in at once against a limit of 10, from several connections', async () => {
      const stores = [t.store, ...(await Promise.all([1, 2, 3, 4].map(() => another())))];
      const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) =>
        stores[i % stores.length]!.acceptJob(job(`race-${i}`), reservation(1, 10))));
      const accepted = outcomes.filter((o) => o.status === 'fulfilled').length;
      const refused = outcomes.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'quota.exceeded').length;
      expect([accepted, refused]).toEqual([10, 40]);
      expect(await t.store.usage('s1', 'u1', 'imagine', DAY)).toEqual({ reserved: 10, charged: 0, refunded: 0 });
    });

    it('runs a request id replayed at once from several connections once', async () => {
      const stores = [t.store, ...(await Promise.all([1, 2].map(() => another())))];
      const r = { id: 'evt-race', spaceId: 's1', userId: 'u1', command: 'imagine', receivedAt: 1 };
      const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % stores.length]!.claimRequest(r)));
      expect(claims.filter(Boolean)).toHaveLength(1);
    });

    it('settles a reservation once when several connections settle it at once', async () => {
      const stores = [t.store, ...(await Promise.all([1, 2].map(() => another())))];
      await t.store.acceptJob(job('a'), reservation(4, 10));
      const settled = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        stores[i % stores.length]!.settleJob('a', i % 2 === 0 ? 'charged' : 'refunded', 10 + i)));
      expect(settled.filter(Boolean)).toHaveLength(1);
      const usage = await t.store.usage('s1', 'u1', 'imagine', DAY);
      expect(usage.reserved).toBe(0);
      expect(usage.charged + usage.refunded).toBe(4);
    });
  });
}
