import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bot } from '../../bot/bot.js';
import { PictalkError, type ErrorCode } from '../../common/errors.js';
import { errorReply } from '../../bot/replies.js';
import { SqliteStore } from '../../bot/sqlite.store.js';
import type { JobRecord } from '../../bot/store.js';
import type { Attachment, BotRequest, Conversation, Reply } from '../../bot/types.js';
import { until } from '../helpers/until.js';
import { actor, defaultResult, FakeCore, makeBot, ManualClock, moderator, RecordingConversation, request } from './helpers.js';

describe('idempotency', () => {
  it('never starts a second job for the same request id, and replies once', async () => {
    const t = makeBot();
    const first = new RecordingConversation();
    const second = new RecordingConversation();
    const req = request({ name: 'imagine', options: { prompt: 'x' } }, actor(), 'slack-evt-1');
    const [a, b] = await Promise.all([t.bot.handle(req, first), t.bot.handle({ ...req, receivedAt: req.receivedAt + 3000 }, second)]);
    expect(a).toEqual({ duplicate: false, jobId: first.reply.jobId });
    expect(b).toEqual({ duplicate: true });
    expect(second.replies).toEqual([]);
    expect(t.core.of('imagine')).toHaveLength(1);
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).charged).toBe(1);
    // ... also after the first has finished (a late Slack retry)
    expect(await t.bot.handle(req, new RecordingConversation())).toEqual({ duplicate: true });
  });

  it('does not audit a moderator command twice', async () => {
    const t = makeBot();
    const req = request({ name: 'blocklist.add', pattern: 'x' }, moderator(), 'interaction-9');
    await t.bot.handle(req, new RecordingConversation());
    await t.bot.handle(req, new RecordingConversation());
    expect((await t.store.listAudit('space1'))).toHaveLength(1);
  });

  it('forgets request ids after a day', async () => {
    const t = makeBot();
    const req = request({ name: 'status' }, actor(), 'old-event');
    await t.bot.handle({ ...req, receivedAt: t.clock.now() }, new RecordingConversation());
    t.clock.advance(25 * 3600 * 1000);
    await t.bot.handle(request({ name: 'status' }), new RecordingConversation()); // prunes
    const again = new RecordingConversation();
    expect(await t.bot.handle({ ...req, receivedAt: t.clock.now() }, again)).toEqual({ duplicate: false });
    expect(again.replies).toHaveLength(1);
  });

  it('remembers request ids across a restart', async () => {
    const store = new SqliteStore(':memory:');
    expect((await store.claimRequest({ id: 'r', spaceId: 's', userId: 'u', command: 'status', receivedAt: 1 }))).toBe(true);
    const bot = new Bot({ store, core: new FakeCore() });
    const conversation = new RecordingConversation();
    return bot.handle({ id: 'r', actor: actor(), channelId: 'c', command: { name: 'status' }, receivedAt: 1 }, conversation)
      .then((outcome) => expect(outcome.duplicate).toBe(true));
  });
});

describe('never throws, never loses a request', () => {
  it('answers a malformed request with input.invalid', async () => {
    const t = makeBot();
    const conversation = new RecordingConversation();
    await t.bot.handle({ id: '', actor: actor(), channelId: 'c', command: { name: 'status' }, receivedAt: 0 }, conversation);
    expect(conversation.reply.error?.code).toBe('input.invalid');
    const unknown = new RecordingConversation();
    await t.bot.handle(request({ name: 'paint' } as unknown as BotRequest['command']), unknown);
    expect(unknown.reply.text).toBe('Unknown command `"paint"` (string).');
  });

  it('survives a conversation whose status and finish throw', async () => {
    const errors: string[] = [];
    const t = makeBot({}, { logger: { warn: () => undefined, error: (message) => errors.push(message) } });
    const conversation: Conversation = {
      status: () => { throw new Error('edit failed'); },
      finish: async () => { throw new Error('send failed'); },
    };
    await expect(t.bot.handle(request({ name: 'imagine', options: { prompt: 'x' } }), conversation)).resolves.toMatchObject({ duplicate: false });
    expect(errors).toEqual(['conversation.finish failed; the reply was not delivered']);
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).charged).toBe(1);
  });

  it('answers even when the store fails, and logs it', async () => {
    const errors: string[] = [];
    const t = makeBot({}, { logger: { warn: () => undefined, error: (message) => errors.push(message) } });
    await t.store.close();
    const conversation = new RecordingConversation();
    await t.bot.handle(request({ name: 'status' }), conversation);
    expect(conversation.reply.error?.code).toBe('inference.failed');
    expect(conversation.reply.text).toBe('Something went wrong on our side; it has been logged.');
    expect(errors).toEqual(['unexpected error in a command']);
  });

  it('refunds jobs a previous process accepted but never finished', async () => {
    const store = new SqliteStore(':memory:');
    await store.acceptJob(
      { id: 'j1', requestId: 'r1', platform: 'slack', requesterId: 'u1', spaceId: 's', channelId: 'c', kind: 'imagine', settings: {}, createdAt: 1 },
      { spaceId: 's', userId: 'u1', kind: 'imagine', day: '2025-06-01', units: 4, limit: 20 },
    );
    const warnings: string[] = [];
    const bot = new Bot({ store, core: new FakeCore(), clock: new ManualClock(), logger: { warn: (m) => warnings.push(m), error: () => undefined } });
    expect(await bot.recoverInterrupted()).toBe(1);
    expect((await store.usage('s', 'u1', 'imagine', '2025-06-01'))).toEqual({ reserved: 0, charged: 0, refunded: 4 });
    expect(warnings).toEqual(['refunded 1 job(s) interrupted by a restart']);
  });

  it('tells the requesters of the jobs a restart lost, once the adapters run: those of the last hour', async () => {
    const store = new SqliteStore(':memory:');
    const clock = new ManualClock(Date.UTC(2025, 5, 1, 12));
    const accept = (id: string, requesterId: string, createdAt: number) => store.acceptJob(
      { id, requestId: `r-${id}`, platform: 'discord', requesterId, spaceId: 's', channelId: 'c', kind: 'imagine', settings: { route: { to: id } }, createdAt },
      { spaceId: 's', userId: requesterId, kind: 'imagine', day: '2025-06-01', units: 1, limit: 20 },
    );
    await accept('recent', 'u1', clock.now() - 60_000);
    await accept('old', 'u2', clock.now() - 2 * 3600_000);
    await accept('unreachable', 'u3', clock.now() - 1000);
    const bot = new Bot({ store, core: new FakeCore(), clock, logger: { warn: () => undefined, error: () => undefined } });
    expect(await bot.recoverInterrupted()).toBe(3);
    const conversations = new Map<string, RecordingConversation>();
    const reconnect = (job: JobRecord): RecordingConversation | undefined => {
      if (job.id === 'unreachable') return undefined;     // its route can no longer be used
      const conversation = new RecordingConversation();
      conversations.set(job.id, conversation);
      return conversation;
    };
    expect(await bot.tellInterrupted(reconnect)).toBe(1);
    expect([...conversations.keys()]).toEqual(['recent']);
    expect(conversations.get('recent')!.reply).toMatchObject({
      jobId: 'recent', ephemeral: true, error: { code: 'inference.failed' },
      text: 'pictalk restarted before this job finished, so it was lost. Your quota was refunded. Please send it again.',
    });
    // told once
    expect(await bot.tellInterrupted(reconnect)).toBe(0);
    expect(await store.usage('s', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 0, refunded: 1 });
  });

  it('answers again, once the adapters run, the jobs the last run settled and never answered: the same reply, charged once', async () => {
    const first = makeBot();
    first.core.behaviour.imagine = async (input) => {
      if (input.kind === 'imagine' && input.request.prompt === 'fail') throw new PictalkError('inference.failed', 'the model failed');
      return defaultResult(input);
    };
    // the platform takes each reply, and the process dies before any is done
    const sending: Reply[] = [];
    const dying: Conversation = { status: () => undefined, finish: (reply) => { sending.push(reply); return new Promise<void>(() => undefined); } };
    const picture: Attachment = { name: 'photo.png', contentType: 'image/png', size: 2048, fetch: async () => Buffer.from('png:a blue star') };
    void first.bot.handle(request({ name: 'imagine', options: { prompt: 'a red circle', seed: 5 } }, actor('u1'), 'r-img'), dying);
    void first.bot.handle(request({ name: 'imagine', options: { prompt: 'fail' } }, actor('u2'), 'r-fail'), dying);
    void first.bot.handle(request({ name: 'caption', attachment: picture, voice: true }, actor('u3'), 'r-cap'), dying);
    await until(() => sending.length >= 3);
    expect(sending).toHaveLength(3);
    expect((await first.store.unansweredJobs(0)).map((job) => job.kind).sort()).toEqual(['caption', 'imagine', 'imagine']);

    // the restart: a new process on the same store, its adapters up, conversations rebuilt from the jobs' routes
    const second = makeBot({}, { store: first.store });
    expect(await second.bot.recoverInterrupted()).toBe(0);
    const again = new Map<string, RecordingConversation>();
    const told = await second.bot.tellInterrupted((job) => {
      const conversation = new RecordingConversation();
      again.set(job.requestId, conversation);
      return conversation;
    });
    expect(told).toBe(3);
    const sent = (id: string): Reply => sending.find((reply) => reply.jobId === again.get(id)!.reply.jobId)!;
    // the same pictures, redrawn from the stored seed, with the same text and buttons
    expect(again.get('r-img')!.reply.images).toEqual(sent('r-img').images);
    expect(again.get('r-img')!.reply.text).toBe(sent('r-img').text);
    expect(again.get('r-img')!.reply.buttons).toEqual(sent('r-img').buttons);
    expect(again.get('r-fail')!.reply).toMatchObject({ error: { code: 'inference.failed' }, text: sent('r-fail').text });
    expect(again.get('r-cap')!.reply.text).toBe(sent('r-cap').text);
    expect(again.get('r-cap')!.reply.voice?.ogg).toEqual(sent('r-cap').voice?.ogg);
    // charged once, refunded once; answered now
    const day = '2025-06-01';
    expect(await first.store.usage('space1', 'u1', 'imagine', day)).toEqual({ reserved: 0, charged: 1, refunded: 0 });
    expect(await first.store.usage('space1', 'u2', 'imagine', day)).toEqual({ reserved: 0, charged: 0, refunded: 1 });
    expect(await first.store.usage('space1', 'u3', 'caption', day)).toEqual({ reserved: 0, charged: 1, refunded: 0 });
    expect(await first.store.unansweredJobs(0)).toEqual([]);
    expect(await second.bot.tellInterrupted(() => new RecordingConversation())).toBe(0);
  });

  it('gives the charge back when a job it answers again cannot be drawn again: its upload no longer kept, the model changed', async () => {
    const first = makeBot();
    const sending: Reply[] = [];
    const dying: Conversation = { status: () => undefined, finish: (reply) => { sending.push(reply); return new Promise<void>(() => undefined); } };
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const upload: Attachment = { name: 'start.png', contentType: 'image/png', size: png.length, fetch: async () => png };
    void first.bot.handle(request({ name: 'imagine', options: { prompt: 'a red circle', image: upload, strength: 0.5, seed: 2 } }, actor('u1'), 'r-upload'), dying);
    void first.bot.handle(request({ name: 'imagine', options: { prompt: 'a blue star', seed: 3 } }, actor('u2'), 'r-model'), dying);
    await until(() => sending.length >= 2);
    expect(sending).toHaveLength(2);
    const day = '2025-06-01';
    expect(await first.store.usage('space1', 'u1', 'imagine', day)).toEqual({ reserved: 0, charged: 1, refunded: 0 });

    // the restart: the upload was kept in the first process's memory only, and another model draws now
    const second = makeBot({}, { store: first.store });
    second.core.behaviour.imagine = async (input) => ({ ...defaultResult(input), model: { name: 'another', hash: '1' } } as never);
    await second.bot.recoverInterrupted();
    const again = new Map<string, RecordingConversation>();
    expect(await second.bot.tellInterrupted((job) => {
      const conversation = new RecordingConversation();
      again.set(job.requestId, conversation);
      return conversation;
    })).toBe(2);
    expect(again.get('r-upload')!.reply).toMatchObject({
      error: { code: 'input.invalid' },
      text: 'The picture this job started from (`start.png`) is no longer kept here; send /imagine with the image again. Your quota was refunded.',
    });
    expect(again.get('r-model')!.reply).toMatchObject({ error: { code: 'inference.failed' }, text: expect.stringContaining('Your quota was refunded.') });
    for (const user of ['u1', 'u2']) expect(await first.store.usage('space1', user, 'imagine', day)).toEqual({ reserved: 0, charged: 0, refunded: 1 });
    for (const reply of sending) expect(await first.store.getJob(reply.jobId!)).toMatchObject({ state: 'failed', answeredAt: expect.any(Number) });
    expect(await first.store.unansweredJobs(0)).toEqual([]);
  });

  it('validates its config up front', () => {
    expect(() => new Bot({ store: new SqliteStore(':memory:'), core: new FakeCore(), config: { rateLimit: { capacity: 0 } } }))
      .toThrow('Expected `rateLimit.capacity` to be an integer from 1 to 10000, got `0` (number)');
  });
});

describe('friendly error replies', () => {
  const cases: Array<[ErrorCode, Record<string, unknown>, string]> = [
    ['quota.exceeded', { kind: 'imagine', used: 20, limit: 20, units: 1 }, "You've used your 20 images for today; it resets at 00:00 UTC."],
    ['quota.exceeded', { kind: 'caption', used: 49, limit: 50, units: 2 }, 'You asked for 2 captions but have 1 left today; it resets at 00:00 UTC.'],
    ['rate.limited', { retryAfterMs: 90_000 }, "You're sending commands too fast; try again in 2 min."],
    ['content.blocked', {}, "That prompt uses words this space doesn't allow, so I didn't run it."],
    ['permission.denied', { command: 'quota.set' }, 'Only moderators can use `quota.set`.'],
    ['queue.busy', {}, 'pictalk is busy: the queue is full right now; please try again in a minute.'],
    ['queue.busy', { scope: 'total', queued: 64, limit: 64 }, 'pictalk is busy: the queue is full right now; please try again in a minute.'],
    ['queue.busy', { reason: 'redis', error: 'connect ECONNREFUSED' }, "pictalk is busy right now (its job queue can't be reached); please try again in a moment."],
    ['queue.busy', { closed: true }, 'pictalk is restarting and takes no new jobs right now; please try again in a moment.'],
    ['queue.busy', { scope: 'user', queued: 4, limit: 4 }, 'You already have 4 jobs waiting or running, the most one person can have; please try again when one has finished.'],
    ['model.invalid', {}, "The model is not set up correctly, so I can't do that now; an operator has to fix it."],
    ['platform.rate_limited', {}, 'The chat platform is slowing us down; please try again shortly.'],
  ];
  it.each(cases)('%s reads as a sentence for people', (code, details, text) => {
    const reply = errorReply(new PictalkError(code, 'internal message', details));
    expect(reply).toEqual({ text, ephemeral: true, error: { code, retryable: new PictalkError(code, '').retryable } });
  });

  it('keeps the expected/got message of input errors', () => {
    expect(errorReply(new PictalkError('input.invalid', 'Expected `steps` to be an integer from 1 to 50, got `80` (number)')).text)
      .toBe('Expected `steps` to be an integer from 1 to 50, got `80` (number).');
  });
});

describe('the Bot with SQLite on a file', () => {
  it('keeps quotas across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pictalk-bot-'));
    try {
      const path = join(dir, 'pictalk.sqlite');
      const clock = new ManualClock();
      const quiet = { warn: () => undefined, error: () => undefined };
      const firstStore = new SqliteStore(path);
      const first = new Bot({ store: firstStore, core: new FakeCore(), clock, logger: quiet, config: { defaultDailyLimits: { imagine: 1 } } });
      const a = new RecordingConversation();
      await first.handle(request({ name: 'imagine', options: { prompt: 'x' } }), a);
      expect(a.reply.images).toHaveLength(1);
      firstStore.close();
      const second = new Bot({ store: new SqliteStore(path), core: new FakeCore(), clock, logger: quiet, config: { defaultDailyLimits: { imagine: 1 } } });
      const b = new RecordingConversation();
      await second.handle(request({ name: 'imagine', options: { prompt: 'y' } }), b);
      expect(b.reply.error?.code).toBe('quota.exceeded');
      expect(b.reply.text).toBe("You've used your 1 image for today; it resets at 00:00 UTC.");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a store that stops answering just after a job is charged', () => {
  it('still sends the reply, and writes the job\'s state once the store answers again', async () => {
    const store = new SqliteStore(':memory:');
    let down = 0;                                      // how many job updates to refuse
    const updateJob = store.updateJob.bind(store);
    store.updateJob = async (...args) => {
      if (down > 0) { down -= 1; throw new PictalkError('store.unavailable', 'The database cannot be reached: test'); }
      return updateJob(...args);
    };
    const t = makeBot({}, { store });
    t.core.manual = ['imagine'];
    const sent = t.send({ name: 'imagine', options: { prompt: 'charged, then the store went away' } }, actor('u1'));
    const [job] = await t.core.waitForJobs(1, 'imagine');
    down = 1;                                          // the update after the charge fails once
    job!.resolve();
    const conversation = await sent;
    expect(conversation.reply.error).toBeUndefined();
    expect(conversation.reply.images).toHaveLength(1);
    expect(down).toBe(0);
    const day = new Date(t.clock.now()).toISOString().slice(0, 10);
    expect(await store.usage('space1', 'u1', 'imagine', day)).toEqual({ reserved: 0, charged: 1, refunded: 0 });
    expect((await store.getJob(job!.id))?.state).not.toBe('succeeded');
    for (let i = 0; i < 60 && (await store.getJob(job!.id))?.state !== 'succeeded'; i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await store.getJob(job!.id))?.state).toBe('succeeded');
    store.close();
  }, 15_000);
});
