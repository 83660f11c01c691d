import { PictalkError, describe as describeValue, asInferenceError } from '../../inference/errors.js';

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
