/**
 * A front that stops while its jobs run, in a cluster: another front (or the same one restarted) claims them once
 * the stopped front's follow lease runs out, follows them to their results, charges the quota once and replies
 * through a conversation rebuilt from the route kept in the job. A job the queue never got is failed and refunded
 * after a grace, one it is still getting is left alone. Real Redis, a real ClusterWorker, the real Bot and store.
 */
import { Bot } from '../../bot/bot.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import type { Conversation, JobStatus, Reply } from '../../bot/types.js';
import { ClusterClient } from '../../inference/cluster/client.js';
import { ClusterWorker } from '../../inference/cluster/worker.js';
import { createInferenceMetrics, createMetricsRegistry } from '../../inference/metrics.js';
import { redisCommand, startRedis, type RedisServer } from '../helpers/redis.server.js';
import { steeredPipelines } from './port.contract.js';
import { actor, ManualClock, request, silentLogger } from './helpers.js';
import { waitFor } from '../helpers/until.js';

let redis: RedisServer;
beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => { await redis?.stop(); });

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => { for (const close of closers.splice(0).reverse()) await close().catch(() => undefined); });

/** A conversation with a route: what an adapter rebuilds it from after a restart. */
class RoutedConversation implements Conversation {
  readonly replies: Reply[] = [];
  readonly statuses: JobStatus[] = [];
  constructor(readonly name: string) {}
  status(update: JobStatus): void { this.statuses.push(update); }
  async finish(reply: Reply): Promise<void> { this.replies.push(reply); }
  route(): Record<string, unknown> { return { platform: 'local', conversation: this.name }; }
}

let n = 0;
async function cluster(steps = { stepMs: 25, steps: 12 }): Promise<{ prefix: string; store: SqliteStore; front: (followMs: number) => Promise<{ bot: Bot; client: ClusterClient }> }> {
  const prefix = `resume${++n}`;
  const worker = await ClusterWorker.open(steeredPipelines(steps), {
    redisUrl: redis.url, prefix, lockMs: 2000, log: silentLogger, metrics: createInferenceMetrics(createMetricsRegistry()),
  });
  closers.push(() => worker.close());
  const store = new SqliteStore(':memory:');
  closers.push(() => store.close());
  const clock = new ManualClock(Date.now());
  const front = async (followMs: number): Promise<{ bot: Bot; client: ClusterClient }> => {
    const client = await ClusterClient.open({ redisUrl: redis.url, prefix, followMs, log: silentLogger });
    closers.push(() => client.close());
    const bot = new Bot({ store, core: client, clock, logger: silentLogger, randomSeed: () => 7, config: { rateLimit: { capacity: 100, windowMs: 1000 } } });
    return { bot, client };
  };
  return { prefix, store, front };
}

const until = (done: () => boolean | Promise<boolean>): Promise<void> => waitFor(done, 10_000, 20);

describe('a front that stops while its jobs run', () => {
  it('has its job followed by another front: one reply through the rebuilt conversation, the quota charged once', async () => {
    const { store, front } = await cluster();
    const a = await front(1000);
    const first = new RoutedConversation('first');
    void a.bot.handle(request({ name: 'imagine', options: { prompt: 'survives its front' } }, actor('u1'), 'req-1'), first);
    await until(async () => (await store.unfinishedJobs()).length === 1);
    const [job] = await store.unfinishedJobs();
    expect(job!.settings.route).toEqual({ platform: 'local', conversation: 'first' });
    await a.client.close();                    // the front stops: its lease is no longer renewed

    const b = await front(1000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted((record) => {
      const conversation = new RoutedConversation(`rebuilt from ${String(record.settings.route && (record.settings.route as { conversation: string }).conversation)}`);
      rebuilt.push(conversation);
      return conversation;
    }, { everyMs: 50 });
    closers.push(async () => stop());
    await until(() => rebuilt.length === 1 && rebuilt[0]!.replies.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));   // a second sweep must not take it again
    expect(rebuilt).toHaveLength(1);
    expect(rebuilt[0]!.name).toBe('rebuilt from first');
    expect(rebuilt[0]!.replies[0]).toMatchObject({ jobId: job!.id, images: [{ png: Buffer.from('png:survives its front') }] });
    expect(first.replies).toEqual([]);
    expect(await store.getJob(job!.id)).toMatchObject({ state: 'succeeded' });
    expect(await store.usage(job!.spaceId, 'u1', 'imagine', new Date(job!.createdAt).toISOString().slice(0, 10)))
      .toEqual({ reserved: 0, charged: 1, refunded: 0 });
  });

  it('keeps its claim while it builds the reply after the result, longer than the lease, so no other front answers too', async () => {
    const { store, front, prefix } = await cluster();
    // a lease of 3 s (renewed every second): short enough for the test, long enough that a busy machine (a CI run with
    // other suites beside this one) stalling this process or Redis for a second or two does not let it lapse
    const client = await ClusterClient.open({ redisUrl: redis.url, prefix, followMs: 3000, log: silentLogger });
    closers.push(() => client.close());
    // alt text that takes two and a half leases' time: the result is in, the reply not yet built
    const slowAltText = { describe: async () => { await new Promise((resolve) => setTimeout(resolve, 7500)); return 'a slow description'; } };
    const a = new Bot({ store, core: client, captioner: slowAltText, logger: silentLogger, randomSeed: () => 7, config: { rateLimit: { capacity: 100, windowMs: 1000 } } });
    const b = await front(1000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted(() => { const c = new RoutedConversation('b'); rebuilt.push(c); return c; }, { everyMs: 50 });
    closers.push(async () => stop());
    const conversation = new RoutedConversation('a');
    await a.handle(request({ name: 'imagine', options: { prompt: 'described slowly' } }, actor('u5'), 'req-5'), conversation);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(conversation.replies).toHaveLength(1);
    expect(conversation.replies[0]!.images?.[0]?.altText).toBe('a slow description');
    expect(rebuilt).toEqual([]);
  });

  it('lets go when it stops: a job still running goes to another front at once, a reply being built is finished here', async () => {
    // one worker, one imagine job at a time, 1.2 s each: the first job's result comes while the second still runs
    const { store, front, prefix } = await cluster({ stepMs: 100, steps: 12 });
    const client = await ClusterClient.open({ redisUrl: redis.url, prefix, followMs: 3000, log: silentLogger });
    closers.push(() => client.close());
    let describing = 0;
    const slowAltText = { describe: async () => { describing += 1; await new Promise((resolve) => setTimeout(resolve, 2000)); return 'described late'; } };
    const a = new Bot({ store, core: client, captioner: slowAltText, logger: silentLogger, randomSeed: () => 7, config: { rateLimit: { capacity: 100, windowMs: 1000 } } });
    const b = await front(3000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted((record) => {
      const c = new RoutedConversation(`rebuilt from ${(record.settings.route as { conversation: string }).conversation}`);
      rebuilt.push(c);
      return c;
    }, { everyMs: 50 });
    closers.push(async () => stop());
    const [first, second] = [new RoutedConversation('first'), new RoutedConversation('second')];
    void a.handle(request({ name: 'imagine', options: { prompt: 'done before the stop' } }, actor('u6'), 'req-6'), first);
    void a.handle(request({ name: 'imagine', options: { prompt: 'still running at the stop' } }, actor('u7'), 'req-7'), second);
    await until(() => describing === 1);                   // the first job's result is in, its reply being built

    const stopping = Date.now();
    await client.letGo(10_000);
    // it waited for the reply it was building, and sent it
    expect(first.replies).toHaveLength(1);
    expect(first.replies[0]!.images?.[0]?.altText).toBe('described late');
    expect(Date.now() - stopping).toBeGreaterThan(1000);
    // the running job went to the other front at once (no lease to wait out), which replied; this front ended its
    // command quietly when it let go (no reply, no charge, and no progress edit after, over the other front's reply)
    expect(second.replies).toEqual([{ text: '', silent: true, answeredElsewhere: true, jobId: expect.any(String) }]);
    const quietFrom = second.statuses.length;
    await until(() => rebuilt.length === 1 && rebuilt[0]!.replies.length === 1);
    expect(rebuilt[0]!.name).toBe('rebuilt from second');
    expect(rebuilt[0]!.replies[0]!.jobId).toBe(second.replies[0]!.jobId);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(second.replies).toHaveLength(1);
    expect(second.statuses).toHaveLength(quietFrom);
    expect(rebuilt).toHaveLength(1);
    expect(await store.unfinishedJobs()).toEqual([]);
  });

  it('answers once when two fronts follow the same job: the one that settles it first replies, the other stays quiet', async () => {
    const { store, front, prefix } = await cluster();
    // a long lease (renewed every 20 s): nothing renews it during the test, so its lapse below stays lapsed
    const client = await ClusterClient.open({ redisUrl: redis.url, prefix, followMs: 60_000, log: silentLogger });
    closers.push(() => client.close());
    const b = await front(3000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted(() => { const c = new RoutedConversation('b'); rebuilt.push(c); return c; }, { everyMs: 50 });
    closers.push(async () => stop());
    let described = false;
    // the result is in and this front builds its reply when its lease lapses (Redis was away longer than it, or the
    // process stalled): another front takes the job over and answers it before this one is done
    const slowAltText = {
      describe: async () => {
        const [job] = await store.unfinishedJobs();
        await redisCommand(redis.port, 'DEL', `${prefix}:follow:${job!.id}`);
        await until(() => rebuilt.length === 1 && rebuilt[0]!.replies.length === 1);
        described = true;
        return 'described late';
      },
    };
    const a = new Bot({ store, core: client, captioner: slowAltText, logger: silentLogger, randomSeed: () => 7, config: { rateLimit: { capacity: 100, windowMs: 1000 } } });
    const first = new RoutedConversation('first');
    await a.handle(request({ name: 'imagine', options: { prompt: 'followed twice' } }, actor('u8'), 'req-8'), first);
    expect(described).toBe(true);
    const jobId = rebuilt[0]!.replies[0]!.jobId!;
    // the other front settled the job first and replied; the first front's reply is silent (its adapter leaves the
    // status message to the other front and sends nothing)
    expect(rebuilt[0]!.replies[0]).toMatchObject({ images: [{ png: Buffer.from('png:followed twice') }] });
    expect(first.replies).toEqual([{ text: '', silent: true, answeredElsewhere: true, jobId }]);
    const job = await store.getJob(jobId);
    expect(job).toMatchObject({ state: 'succeeded' });
    expect(await store.usage(job!.spaceId, 'u8', 'imagine', new Date(job!.createdAt).toISOString().slice(0, 10)))
      .toEqual({ reserved: 0, charged: 1, refunded: 0 });
  });

  it('steps aside when another front claims its job while it runs: one reply and one set of progress messages, the other front\'s', async () => {
    const { store, front, prefix } = await cluster({ stepMs: 100, steps: 12 });
    // a long lease (renewed every 20 s): nothing renews it during the test, so its lapse below stays lapsed
    const client = await ClusterClient.open({ redisUrl: redis.url, prefix, followMs: 60_000, log: silentLogger });
    closers.push(() => client.close());
    let described = 0;
    const altText = { describe: async () => { described += 1; return 'described'; } };
    const a = new Bot({ store, core: client, captioner: altText, logger: silentLogger, randomSeed: () => 7, config: { rateLimit: { capacity: 100, windowMs: 1000 } } });
    const first = new RoutedConversation('first');
    const handled = a.handle(request({ name: 'imagine', options: { prompt: 'taken over while it runs' } }, actor('u9'), 'req-9'), first);
    await until(async () => (await store.unfinishedJobs()).length === 1);
    const [job] = await store.unfinishedJobs();
    await redisCommand(redis.port, 'DEL', `${prefix}:follow:${job!.id}`);
    const b = await front(3000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted(() => { const c = new RoutedConversation('b'); rebuilt.push(c); return c; }, { everyMs: 50 });
    closers.push(async () => stop());
    await handled;
    // the first front noticed the other front's claim (within a second) and ended its part quietly: no alt text,
    // no progress after it, nothing settled
    expect(first.replies).toEqual([{ text: '', silent: true, answeredElsewhere: true, jobId: job!.id }]);
    const quietFrom = first.statuses.length;
    await until(() => rebuilt.length === 1 && rebuilt[0]!.replies.length === 1);
    expect(rebuilt[0]!.replies[0]).toMatchObject({ jobId: job!.id, images: [{ png: Buffer.from('png:taken over while it runs') }] });
    expect(described).toBe(0);
    expect(first.statuses).toHaveLength(quietFrom);
    expect(await store.getJob(job!.id)).toMatchObject({ state: 'succeeded' });
    expect(await store.usage(job!.spaceId, 'u9', 'imagine', new Date(job!.createdAt).toISOString().slice(0, 10)))
      .toEqual({ reserved: 0, charged: 1, refunded: 0 });
    // the answer is marked in Redis: no front claims the job again
    expect(await redisCommand(redis.port, 'GET', `${prefix}:follow:${job!.id}`)).toBe(`answered:${b.client.frontId}`);
    expect(await client.claim([job!.id])).toEqual([]);
  });

  it('stops while it sends a reply: another front sends it from the kept result, charging nothing twice', async () => {
    const { store, front, prefix } = await cluster();
    const a = await front(1000);
    // the platform takes the reply and the process dies before it is done: finish never returns
    const sending: Reply[] = [];
    const dying: Conversation = {
      status: () => undefined,
      finish: (reply) => { sending.push(reply); return new Promise<void>(() => undefined); },
      route: () => ({ platform: 'local', conversation: 'dying' }),
    };
    void a.bot.handle(request({ name: 'imagine', options: { prompt: 'sent by the next front' } }, actor('u10'), 'req-10'), dying);
    void a.bot.handle(request({ name: 'imagine', options: { prompt: 'fail' } }, actor('u11'), 'req-11'), dying);
    await until(() => sending.length === 2);
    const ok = sending.find((reply) => !reply.error)!;
    const failed = sending.find((reply) => reply.error)!;
    expect(ok.images).toHaveLength(1);
    expect(failed.error!.code).toBe('inference.failed');
    // settled (charged, refunded) and not answered
    expect((await store.unansweredJobs(0)).map((job) => job.id).sort()).toEqual([ok.jobId, failed.jobId].sort());
    await a.client.close();                    // the process is gone: its leases are no longer renewed

    const b = await front(1000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted((record) => {
      const c = new RoutedConversation(`${record.id} from ${(record.settings.route as { conversation: string }).conversation}`);
      rebuilt.push(c);
      return c;
    }, { everyMs: 50 });
    closers.push(async () => stop());
    await until(() => rebuilt.length === 2 && rebuilt.every((c) => c.replies.length === 1));
    await new Promise((resolve) => setTimeout(resolve, 300));   // a second sweep must not answer them again
    expect(rebuilt).toHaveLength(2);
    const again = (jobId: string | undefined): Reply => rebuilt.find((c) => c.name === `${jobId} from dying`)!.replies[0]!;
    expect(again(ok.jobId)).toMatchObject({ jobId: ok.jobId, images: [{ png: Buffer.from('png:sent by the next front') }] });
    expect(again(ok.jobId).text).toBe(ok.text);
    expect(again(failed.jobId)).toMatchObject({ jobId: failed.jobId, error: { code: 'inference.failed' } });
    expect(again(failed.jobId).text).toBe(failed.text);
    expect(again(failed.jobId).text).toMatch(/refunded/);
    const job = (await store.getJob(ok.jobId!))!;
    const day = new Date(job.createdAt).toISOString().slice(0, 10);
    expect(await store.usage(job.spaceId, 'u10', 'imagine', day)).toEqual({ reserved: 0, charged: 1, refunded: 0 });
    expect(await store.usage(job.spaceId, 'u11', 'imagine', day)).toEqual({ reserved: 0, charged: 0, refunded: 1 });
    expect(await store.getJob(ok.jobId!)).toMatchObject({ state: 'succeeded', answeredAt: expect.any(Number) });
    expect(await store.getJob(failed.jobId!)).toMatchObject({ state: 'failed', answeredAt: expect.any(Number) });
    expect(await store.unansweredJobs(0)).toEqual([]);
    expect(await redisCommand(redis.port, 'GET', `${prefix}:follow:${ok.jobId!}`)).toBe(`answered:${b.client.frontId}`);
  });

  it('keeps its claim until its reply is out: no other front answers a reply being sent', async () => {
    const { store, front } = await cluster();
    const a = await front(1000);
    let release!: () => void;
    const sent = new Promise<void>((resolve) => { release = resolve; });
    const slow: Conversation = {
      status: () => undefined,
      finish: async () => { await sent; },
      route: () => ({ platform: 'local', conversation: 'slow' }),
    };
    const handled = a.bot.handle(request({ name: 'imagine', options: { prompt: 'a slow upload' } }, actor('u12'), 'req-12'), slow);
    await until(async () => (await store.unansweredJobs(0)).length === 1);
    const b = await front(1000);
    const rebuilt: RoutedConversation[] = [];
    const stop = b.bot.resumeInterrupted(() => { const c = new RoutedConversation('b'); rebuilt.push(c); return c; }, { everyMs: 50 });
    closers.push(async () => stop());
    // three leases' time sending: the front renews its claim meanwhile
    await new Promise((resolve) => setTimeout(resolve, 3000));
    release();
    await handled;
    expect(rebuilt).toEqual([]);
    expect(await store.unansweredJobs(0)).toEqual([]);
  });

  it('leaves alone the jobs a live front follows, fails the ones the queue never got after a grace', async () => {
    const { store, front } = await cluster();
    const a = await front(2000);
    const live = new RoutedConversation('live');
    const handled = a.bot.handle(request({ name: 'imagine', options: { prompt: 'followed by its own front' } }, actor('u2'), 'req-2'), live);
    await until(async () => (await store.unfinishedJobs()).length === 1);
    // a job accepted by a front that died before it reached the queue
    await store.acceptJob(
      { id: 'never-queued', requestId: 'req-x', platform: 'local', requesterId: 'u3', spaceId: 'local', channelId: 'c', kind: 'imagine', settings: {}, createdAt: Date.now() - 120_000 },
      { spaceId: 'local', userId: 'u3', kind: 'imagine', day: new Date().toISOString().slice(0, 10), units: 1, limit: 5 },
    );
    const b = await front(2000);
    const rebuilt = new Map<string, RoutedConversation>();
    const stop = b.bot.resumeInterrupted((record) => {
      const c = new RoutedConversation('b');
      rebuilt.set(record.id, c);
      return c;
    }, { everyMs: 50, lostAfterMs: 60_000 });
    closers.push(async () => stop());
    await handled;
    expect(live.replies).toHaveLength(1);
    expect(live.replies[0]!.error).toBeUndefined();
    await until(async () => (await store.getJob('never-queued'))?.state === 'failed');
    // the live front's job is left to it; the lost job's requester is told, once, that it was lost and refunded
    await until(() => rebuilt.get('never-queued')?.replies.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([...rebuilt.keys()]).toEqual(['never-queued']);
    expect(rebuilt.get('never-queued')!.replies).toEqual([expect.objectContaining({
      jobId: 'never-queued', error: expect.objectContaining({ code: 'inference.failed' }), text: expect.stringMatching(/restarted.*refunded/),
    })]);
    expect(await store.usage('local', 'u3', 'imagine', new Date().toISOString().slice(0, 10))).toEqual({ reserved: 0, charged: 0, refunded: 1 });
  });
});

describe('the rate limit across fronts', () => {
  it('is one bucket per user for every front sharing the Redis', async () => {
    const { prefix } = await cluster();
    const clients = [
      await ClusterClient.open({ redisUrl: redis.url, prefix, log: silentLogger }),
      await ClusterClient.open({ redisUrl: redis.url, prefix, log: silentLogger }),
    ];
    for (const client of clients) closers.push(() => client.close());
    const store = new SqliteStore(':memory:');
    closers.push(() => store.close());
    const bots = clients.map((client) => new Bot({
      store, core: client, rateLimits: client, logger: silentLogger, config: { rateLimit: { capacity: 3, windowMs: 60_000 } },
    }));
    const codes: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const conversation = new RoutedConversation(`c${i}`);
      await bots[i % 2]!.handle(request({ name: 'status' }, actor('u9'), `rate-${i}`), conversation);
      codes.push(conversation.replies[0]?.error?.code ?? 'ok');
    }
    expect(codes).toEqual(['ok', 'ok', 'ok', 'rate.limited', 'rate.limited', 'rate.limited']);
  });
});
