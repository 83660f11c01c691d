import { PictalkError } from '../../../common/errors.js';
import { resolveBotConfig } from '../../../bot/config.js';
import { effectiveLimit, nextResetMs, utcDay } from '../../../bot/policy/quota.policy.js';
import { actor, makeBot, moderator, RecordingConversation, request } from '../helpers.js';

const today = (ms: number): string => utcDay(ms);

describe('daily quotas', () => {
  it('reserves, charges and refunds exactly to the unit under many concurrent requests', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 20 } });
    t.core.manual = ['imagine']; // alt-text captions run on their own
    const user = actor('busy');
    const conversations = Array.from({ length: 30 }, () => new RecordingConversation());
    const handled = conversations.map((c, i) => t.bot.handle(request({ name: 'imagine', options: { prompt: `cat ${i}` } }, user), c));

    const jobs = await t.core.waitForJobs(20, 'imagine');
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.core.of('imagine')).toHaveLength(20); // never a 21st reservation
    const refused = conversations.filter((c) => c.replies[0]?.error?.code === 'quota.exceeded');
    expect(refused).toHaveLength(10);
    expect((await t.store.usage('space1', 'busy', 'imagine', today(t.clock.now())))).toEqual({ reserved: 20, charged: 0, refunded: 0 });

    // 12 succeed, 5 fail in the model, 3 are cancelled by their requester
    jobs.slice(0, 12).forEach((job) => job.resolve());
    jobs.slice(12, 17).forEach((job) => job.fail(new PictalkError('inference.failed', 'boom')));
    const cancels = jobs.slice(17).map((job) => t.send({ name: 'cancel', jobId: job.id }, user));
    await Promise.all([...handled, ...cancels]);

    expect((await t.store.usage('space1', 'busy', 'imagine', today(t.clock.now())))).toEqual({ reserved: 0, charged: 12, refunded: 8 });
    const replies = conversations.map((c) => c.reply);
    expect(replies.filter((r) => r.images?.length === 1)).toHaveLength(12);
    expect(replies.filter((r) => r.error?.code === 'inference.failed')).toHaveLength(5);
    expect(replies.filter((r) => r.error?.code === 'job.cancelled')).toHaveLength(3);

    // The 8 refunded units are usable again, and not one more.
    t.core.manual = false;
    const again = await Promise.all(Array.from({ length: 10 }, (_, i) => t.send({ name: 'imagine', options: { prompt: `dog ${i}` } }, user)));
    expect(again.filter((c) => c.reply.images)).toHaveLength(8);
    expect(again.filter((c) => c.reply.error?.code === 'quota.exceeded')).toHaveLength(2);
    expect((await t.store.usage('space1', 'busy', 'imagine', today(t.clock.now())))).toEqual({ reserved: 0, charged: 20, refunded: 8 });
  });

  it('counts every image of a multi-image request and says how many are left', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 5 } });
    expect((await t.send({ name: 'imagine', options: { prompt: 'a', count: 2 } })).reply.images).toHaveLength(2);
    const refused = (await t.send({ name: 'imagine', options: { prompt: 'b', count: 4 } })).reply;
    expect(refused.error).toEqual({ code: 'quota.exceeded', retryable: false });
    expect(refused.text).toBe('You asked for 4 images but have 3 left today; it resets at 00:00 UTC.');
    expect(refused.ephemeral).toBe(true);
  });

  it('says the daily limit is spent in a friendly way', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 1 } });
    await t.send({ name: 'imagine', options: { prompt: 'a' } });
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'b' } })).reply;
    expect(reply.text).toBe("You've used your 1 image for today; it resets at 00:00 UTC.");
  });

  it('starts afresh at 00:00 UTC', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 1 } });
    t.clock.ms = Date.UTC(2025, 5, 1, 23, 59, 0);
    expect((await t.send({ name: 'imagine', options: { prompt: 'a' } })).reply.images).toBeDefined();
    expect((await t.send({ name: 'imagine', options: { prompt: 'b' } })).reply.error?.code).toBe('quota.exceeded');
    t.clock.advance(60_000);
    expect((await t.send({ name: 'imagine', options: { prompt: 'c' } })).reply.images).toBeDefined();
    expect(nextResetMs(Date.UTC(2025, 5, 1, 23, 59))).toBe(Date.UTC(2025, 5, 2));
  });

  it('charges captions separately from images', async () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 0, caption: 1 } });
    expect((await t.send({ name: 'imagine', options: { prompt: 'a' } })).reply.text).toBe('You have no images allowed in this space; a moderator can change that.');
    const attachment = { name: 'x.png', contentType: 'image/png', size: 10, fetch: async () => Buffer.from('png:x') };
    expect((await t.send({ name: 'caption', attachment, voice: false })).reply.text).toBe('A drawing of x.');
    expect((await t.send({ name: 'caption', attachment, voice: false })).reply.error?.code).toBe('quota.exceeded');
  });
});

describe('which limit applies', () => {
  const setup = () => {
    const t = makeBot({ defaultDailyLimits: { imagine: 20 } });
    const mod = moderator();
    return { t, mod };
  };

  it('uses the configured default, then the space default', async () => {
    const { t, mod } = setup();
    expect(await effectiveLimit(t.store, t.bot.config, actor('u'), 'imagine')).toEqual({ limit: 20, source: 'config' });
    await t.send({ name: 'quota.set', target: { kind: 'default' }, kind: 'imagine', limit: 5 }, mod);
    expect(await effectiveLimit(t.store, t.bot.config, actor('u'), 'imagine')).toEqual({ limit: 5, source: 'space' });
  });

  it('gives the most generous of the user roles that have a limit, even below the space default', async () => {
    const { t, mod } = setup();
    await t.send({ name: 'quota.set', target: { kind: 'default' }, kind: 'imagine', limit: 5 }, mod);
    await t.send({ name: 'quota.set', target: { kind: 'role', id: 'trusted' }, kind: 'imagine', limit: 50 }, mod);
    await t.send({ name: 'quota.set', target: { kind: 'role', id: 'newcomer' }, kind: 'imagine', limit: 2 }, mod);
    const limitOf = (roleIds: string[]) => effectiveLimit(t.store, t.bot.config, actor('u', { roleIds }), 'imagine');
    expect(await limitOf(['newcomer', 'trusted', 'no-limit-role'])).toEqual({ limit: 50, source: 'role', roleId: 'trusted' });
    expect(await limitOf(['newcomer'])).toEqual({ limit: 2, source: 'role', roleId: 'newcomer' });
    expect(await limitOf(['no-limit-role'])).toEqual({ limit: 5, source: 'space' });
  });

  it('lets a user override win over every role', async () => {
    const { t, mod } = setup();
    await t.send({ name: 'quota.set', target: { kind: 'role', id: 'trusted' }, kind: 'imagine', limit: 50 }, mod);
    await t.send({ name: 'quota.set', target: { kind: 'user', id: 'u' }, kind: 'imagine', limit: 1 }, mod);
    const user = actor('u', { roleIds: ['trusted'] });
    expect(await effectiveLimit(t.store, t.bot.config, user, 'imagine')).toEqual({ limit: 1, source: 'user' });
    await t.send({ name: 'imagine', options: { prompt: 'a' } }, user);
    expect((await t.send({ name: 'imagine', options: { prompt: 'b' } }, user)).reply.error?.code).toBe('quota.exceeded');
  });

  it('is per space', async () => {
    const { t } = setup();
    await t.store.setLimit('space1', { kind: 'default' }, 'imagine', 3, 'mod', 1);
    expect((await effectiveLimit(t.store, resolveBotConfig(), actor('u', { spaceId: 'other' }), 'imagine')).limit).toBe(20);
  });
});
