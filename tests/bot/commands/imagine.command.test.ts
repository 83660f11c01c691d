import { PictalkError } from '../../../common/errors.js';
import type { ImagineRequest, JobResult } from '../../../inference/types.js';
import { validateImagineOptions } from '../../../bot/commands/imagine.options.js';
import { actor, defaultResult, makeBot } from '../helpers.js';

describe('imagine options', () => {
  const check = (options: object) => () => validateImagineOptions({ prompt: 'cat', ...options }, 500, []);

  it.each([
    [{ steps: 80 }, 'Expected `steps` to be an integer from 1 to 50, got `80` (number)'],
    [{ steps: 2.5 }, 'Expected `steps` to be an integer from 1 to 50, got `2.5` (number)'],
    [{ guidance: 21 }, 'Expected `guidance` to be a number from 0 to 20, got `21` (number)'],
    [{ count: 0 }, 'Expected `count` to be an integer from 1 to 4, got `0` (number)'],
    [{ seed: 2 ** 32 }, 'Expected `seed` to be an integer from 0 to 4294967295, got `4294967296` (number)'],
    [{ seed: '12' }, 'Expected `seed` to be an integer from 0 to 4294967295, got `"12"` (string)'],
    [{ scheduler: 'karras' }, 'Expected `scheduler` to be one of `pndm`, `ddim`, `euler-a`, `dpmpp-2m`, `lcm`, got `"karras"` (string)'],
  ])('rejects %j with the p-queue message shape', (options, message) => {
    expect(check(options)).toThrow(message);
    expect(check(options)).toThrow(expect.objectContaining({ code: 'input.invalid' }));
  });

  it('refuses a malformed or out-of-range prompt weight, naming the option, and keeps a good one as typed', () => {
    expect(check({ prompt: 'a (cat:99)' })).toThrow(expect.objectContaining({
      code: 'input.invalid', message: 'Expected the weight in `(cat:99)` of `prompt` to be a number from 0 to 2, got `99`',
    }));
    expect(check({ negative: '(blur:.)' })).toThrow(expect.objectContaining({
      code: 'input.invalid', message: 'Expected a number after `:` in `(blur:.)` of `negative`, got `.`',
    }));
    expect(validateImagineOptions({ prompt: 'a (red:1.3) [cat]', negative: '(blur)' }, 500, [])).toMatchObject({ prompt: 'a (red:1.3) [cat]', negative: '(blur)' });
  });

  it('runs the blocklist on the words the model reads, past escapes and brackets', () => {
    expect(() => validateImagineOptions({ prompt: 'a n\\sfw cat' }, 500, ['nsfw'])).toThrow(expect.objectContaining({ code: 'content.blocked' }));
    expect(() => validateImagineOptions({ prompt: 'a cat', negative: 'ns(fw)' }, 500, ['nsfw'])).toThrow(expect.objectContaining({ code: 'content.blocked' }));
    expect(validateImagineOptions({ prompt: 'a (cat:1.2)' }, 500, ['nsfw']).prompt).toBe('a (cat:1.2)');
  });

  it('accepts the bounds and fills count', () => {
    expect(validateImagineOptions({ prompt: ' cat ', steps: 50, guidance: 0, count: 4, seed: 0 }, 500, [])).toEqual({
      prompt: 'cat', steps: 50, guidance: 0, count: 4, seed: 0,
    });
  });
});

describe('/imagine', () => {
  it('replies with images whose alt text is the captioner describing each generated image', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'two cats', count: 2, seed: 40 } })).reply;
    expect(t.core.of('caption')).toHaveLength(2); // the unified loop: one caption job per generated image
    expect(t.core.of('caption')[0]!.input).toEqual({ kind: 'caption', request: { image: Buffer.from('png:two cats:40') } });
    expect(reply.images?.map((image) => [image.altText, image.seed])).toEqual([['A drawing of two cats.', 40], ['A drawing of two cats.', 41]]);
    expect(reply.images?.[0]?.name).toBe(`pictalk-${reply.jobId}-1.png`);
    expect(reply.text).toBe('two cats\nseeds 40, 41 · 20 steps · guidance 7.5 · pndm · 64×64');
    expect(reply.buttons).toEqual([
      { action: 'reroll', jobId: reply.jobId, label: 'Reroll', style: 'primary' },
      { action: 'vary', jobId: reply.jobId, index: 1, label: 'Vary 1', style: 'secondary' },
      { action: 'vary', jobId: reply.jobId, index: 2, label: 'Vary 2', style: 'secondary' },
      { action: 'delete', jobId: reply.jobId, label: 'Delete', style: 'danger' },
    ]);
    expect(reply.ephemeral).toBeUndefined();
  });

  it('says when each image is the best of several candidates', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = (input) => {
      const result = defaultResult(input) as Extract<JobResult, { kind: 'imagine' }>;
      return { ...result, settings: { ...result.settings, candidates: 3 } };
    };
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'two cats', seed: 40 } })).reply;
    expect(reply.text).toBe('two cats\nseed 40 · best of 3 · 20 steps · guidance 7.5 · pndm · 64×64');
  });

  it('falls back to the prompt as alt text when captioning fails', async () => {
    const t = makeBot();
    t.core.behaviour.caption = () => { throw new PictalkError('inference.failed', 'captioner broke'); };
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a blue square' } })).reply;
    expect(reply.images?.[0]?.altText).toBe('a blue square');
    expect(reply.error).toBeUndefined();
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).charged).toBe(1);
  });

  it('uses a plugged-in captioner instead of the core', async () => {
    const t = makeBot({}, { captioner: { describe: async (png, { index }) => `custom ${index} ${png.length}` } });
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'x', seed: 1 } })).reply;
    expect(reply.images?.[0]?.altText).toBe('custom 0 7') // 'png:x:1';
    expect(t.core.of('caption')).toHaveLength(0);
  });

  it('forwards queue position and running steps under its job id', async () => {
    const t = makeBot();
    const conversation = await t.send({ name: 'imagine', options: { prompt: 'x' } });
    const jobId = conversation.reply.jobId;
    expect(conversation.statuses.slice(0, 4)).toEqual([
      { state: 'queued', jobId, position: 1 },
      { state: 'running', jobId, stage: 'starting', step: 0, total: 1 },
      { state: 'running', jobId, stage: 'denoise', step: 1, total: 2 },
      { state: 'running', jobId, stage: 'alt-text', step: 0, total: 1 },
    ]);
    expect(conversation.statuses.at(-1)).toEqual({ state: 'running', jobId, stage: 'alt-text', step: 1, total: 1 });
  });

  it('passes the drawn seed, the options and the job id to the core and stores them', async () => {
    const t = makeBot({ imageUpscale: 4 });
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'x', steps: 10, guidance: 3, scheduler: 'ddim', negative: 'blur' } })).reply;
    const [job] = t.core.of('imagine');
    expect(job!.id).toBe(reply.jobId);
    expect(job!.options).toEqual({ jobId: reply.jobId }); // no timeout configured: the core's default applies
    expect(job!.input.request).toEqual({ prompt: 'x', negativePrompt: 'blur', seed: 1000, steps: 10, guidance: 3, scheduler: 'ddim', count: 1, upscale: 4 });
    const stored = (await t.store.getJob(reply.jobId!))!;
    expect(stored.state).toBe('succeeded');
    expect(stored.settings.options).toEqual({ prompt: 'x', negative: 'blur', seed: 1000, steps: 10, guidance: 3, scheduler: 'ddim', count: 1 });
  });

  it('refuses a bad prompt weight before reserving quota: nothing reaches the core, nothing is charged', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a (cat:99)' } })).reply;
    expect(reply.error?.code).toBe('input.invalid');
    expect(reply.text).toContain('from 0 to 2, got `99`');
    expect(t.core.of('imagine')).toHaveLength(0);
    expect(await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).toEqual({ reserved: 0, charged: 0, refunded: 0 });
  });

  it('refunds and explains when the queue is busy', async () => {
    const t = makeBot();
    t.core.busy = true;
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply;
    expect(reply.error).toEqual({ code: 'queue.busy', retryable: true });
    expect(reply.text).toBe('pictalk is busy: the queue is full right now; please try again in a minute. Your quota was refunded.');
    expect((await t.store.getJob(reply.jobId!))?.state).toBe('failed');
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01'))).toEqual({ reserved: 0, charged: 0, refunded: 1 });
  });

  it('refunds a timeout and says so', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = () => { throw new PictalkError('job.timeout', 'ran past 120000 ms'); };
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply;
    expect(reply.text).toBe('That took too long and was stopped. Your quota was refunded. Please try again.');
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).refunded).toBe(1);
  });

  it('turns an unknown error from the core into a generic reply and still refunds', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = () => { throw new TypeError('undefined is not a function'); };
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply;
    expect(reply.error?.code).toBe('inference.failed');
    expect(reply.text).not.toContain('undefined is not a function');
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).refunded).toBe(1);
  });

  it('refuses a result of the wrong kind', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = () => defaultResult({ kind: 'speak', request: { text: 'hi' } });
    expect((await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply.error?.code).toBe('inference.failed');
  });
});

describe('reroll', () => {
  it('re-submits the stored settings with a new seed, charged to whoever pressed it', async () => {
    const t = makeBot();
    const first = (await t.send({ name: 'imagine', options: { prompt: 'a red circle', steps: 12, count: 2, seed: 5 } })).reply;
    const presser = actor('u2');
    const again = (await t.send({ name: 'reroll', jobId: first.jobId! }, presser)).reply;
    expect(again.images).toHaveLength(2);
    expect(again.jobId).not.toBe(first.jobId);
    const request = t.core.of('imagine')[1]!.input.request as ImagineRequest;
    expect(request).toEqual({ prompt: 'a red circle', steps: 12, count: 2, seed: 1000 });
    expect((await t.store.getJob(again.jobId!))?.parentJobId).toBe(first.jobId);
    expect((await t.store.usage('space1', 'u2', 'imagine', '2025-06-01')).charged).toBe(2);
  });

  it('checks the blocklist again', async () => {
    const t = makeBot();
    const first = (await t.send({ name: 'imagine', options: { prompt: 'a red circle' } })).reply;
    await t.send({ name: 'blocklist.add', pattern: 'circle' }, actor('m', { platformModerator: true }));
    expect((await t.send({ name: 'reroll', jobId: first.jobId! })).reply.error?.code).toBe('content.blocked');
  });

  it('does not reveal jobs of another space', async () => {
    const t = makeBot();
    const first = (await t.send({ name: 'imagine', options: { prompt: 'x' } })).reply;
    const reply = (await t.send({ name: 'reroll', jobId: first.jobId! }, actor('u1', { spaceId: 'elsewhere' }))).reply;
    expect(reply.error?.code).toBe('input.invalid');
    expect(reply.text).toBe(`No job \`${first.jobId}\` here.`);
  });
});
