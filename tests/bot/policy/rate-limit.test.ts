import { RateLimiter } from '../../../bot/policy/rate-limit.js';
import { actor, makeBot, ManualClock } from '../helpers.js';

describe('RateLimiter', () => {
  it('allows a burst of `capacity`, then says when the next token comes', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ capacity: 5, windowMs: 30_000 }, clock);
    for (let i = 0; i < 5; i += 1) limiter.take('u');
    expect(() => limiter.take('u')).toThrow(expect.objectContaining({ code: 'rate.limited', details: { retryAfterMs: 6000 } }));
    clock.advance(5_999);
    expect(() => limiter.take('u')).toThrow(expect.objectContaining({ details: { retryAfterMs: 1 } }));
    clock.advance(1);
    expect(() => limiter.take('u')).not.toThrow();
    expect(() => limiter.take('other')).not.toThrow();
  });

  it('never refills past capacity', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ capacity: 2, windowMs: 1000 }, clock);
    clock.advance(60_000);
    limiter.take('u');
    limiter.take('u');
    expect(() => limiter.take('u')).toThrow(expect.objectContaining({ code: 'rate.limited' }));
  });
});

describe('rate limit in the bot', () => {
  it('answers the sixth command in 30 s with rate.limited and a retry-after, per user', async () => {
    const t = makeBot({ rateLimit: { capacity: 5, windowMs: 30_000 } });
    for (let i = 0; i < 5; i += 1) expect((await t.send({ name: 'status' })).reply.error).toBeUndefined();
    const limited = (await t.send({ name: 'status' })).reply;
    expect(limited.error).toEqual({ code: 'rate.limited', retryable: true });
    expect(limited.text).toBe("You're sending commands too fast; try again in 6 s.");
    expect(limited.ephemeral).toBe(true);
    expect((await t.send({ name: 'status' }, actor('someone-else'))).reply.error).toBeUndefined();
    t.clock.advance(6000);
    expect((await t.send({ name: 'status' })).reply.error).toBeUndefined();
  });

  it('always lets a user cancel', async () => {
    const t = makeBot({ rateLimit: { capacity: 1, windowMs: 60_000 } });
    t.core.manual = true;
    const pending = t.send({ name: 'imagine', options: { prompt: 'slow' } });
    const [job] = await t.core.waitForJobs(1);
    expect((await t.send({ name: 'status' })).reply.error?.code).toBe('rate.limited');
    expect((await t.send({ name: 'cancel', jobId: job!.id })).reply.error).toBeUndefined();
    expect((await pending).reply.error?.code).toBe('job.cancelled');
  });
});
