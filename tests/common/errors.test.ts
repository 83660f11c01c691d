import { ERROR_CODES, PictalkError, describe as describeValue, asInferenceError, isPictalkError } from '../../common/errors.js';

describe('PictalkError', () => {
  it('carries its code in its name and knows whether a retry may help', () => {
    const busy = new PictalkError('queue.busy', 'The queue is full');
    expect(busy.name).toBe('PictalkError[queue.busy]');
    expect(busy.retryable).toBe(true);
    expect(new PictalkError('input.invalid', 'bad').retryable).toBe(false);
  });

  it('describes received values the way option errors quote them', () => {
    expect(describeValue(80)).toBe('`80` (number)');
    expect(describeValue('x'.repeat(100))).toContain('...');
  });

  it('wraps foreign errors as inference.failed and keeps its own', () => {
    expect(asInferenceError(new Error('boom'), 'UNet').code).toBe('inference.failed');
    const own = new PictalkError('job.cancelled', 'cancelled');
    expect(asInferenceError(own, 'UNet')).toBe(own);
  });
});

describe('PictalkError across a process boundary', () => {
  it('round-trips through its JSON form, text included, keeping code, message, details and the retry bit', () => {
    const error = new PictalkError('quota.exceeded', 'Daily imagine quota spent (10 of 10)', { limit: 10, used: 10, kind: 'imagine' });
    const json = error.toJSON();
    expect(json).toEqual({ code: 'quota.exceeded', message: 'Daily imagine quota spent (10 of 10)', details: { limit: 10, used: 10, kind: 'imagine' } });
    for (const sent of [json, JSON.parse(JSON.stringify(error)) as unknown, JSON.stringify(error)]) {
      const back = PictalkError.fromJSON(sent);
      expect(back).toBeInstanceOf(PictalkError);
      expect(back.toJSON()).toEqual(json);
      expect(back.name).toBe('PictalkError[quota.exceeded]');
      expect(back.retryable).toBe(false);
    }
    expect(PictalkError.fromJSON(new PictalkError('platform.rate_limited', 'slow down', { retryAfterMs: 500 }).toJSON()).retryable).toBe(true);
  });

  it('turns a malformed or unknown error into inference.failed that quotes what arrived', () => {
    for (const bad of [{ code: 'no.such', message: 'x' }, { message: 'no code' }, 'not json', null, 42]) {
      const back = PictalkError.fromJSON(bad);
      expect(back.code).toBe('inference.failed');
      expect(back.message).toMatch(/Expected an error as \{ code, message, details \}/);
    }
  });

  it('recognises a PictalkError by its shape when it is not an instance of this module copy', () => {
    const foreign = Object.assign(new Error('cancelled'), { name: 'PictalkError[job.cancelled]', code: 'job.cancelled' });
    expect(isPictalkError(foreign)).toBe(true);
    expect(isPictalkError(Object.assign(new Error('x'), { code: 'job.cancelled' }))).toBe(false);
    expect(isPictalkError(Object.assign(new Error('x'), { name: 'PictalkError[nope]', code: 'nope' }))).toBe(false);
    expect(isPictalkError(new PictalkError('input.invalid', 'bad'))).toBe(true);
    expect(ERROR_CODES).toContain('platform.rate_limited');
  });
});
