import type { Attachment } from '../../../bot/types.js';
import type { CaptionResult, JobInput } from '../../../inference/types.js';
import { makeBot } from '../helpers.js';

const photo = (): Attachment => ({
  name: 'holiday.jpg', contentType: 'image/jpeg', size: 2048,
  fetch: async () => Buffer.from('jpeg:a beach at sunset'),
});

/** The captioner's verdict on a picture unlike its world: a guess, with `inDomain: false`. */
const outOfDomain = (_input: JobInput): CaptionResult => ({
  kind: 'caption', caption: 'A big red circle.', tokens: ['a', 'big', 'red', 'circle'], score: -0.4, inDomain: false, domainScore: 6.2, timingsMs: {},
});

describe('/caption of a picture the captioner cannot describe reliably', () => {
  it('explains instead of asserting a caption, offers the guess, speaks nothing and refunds the caption', async () => {
    const t = makeBot();
    t.core.behaviour.caption = outOfDomain;
    const reply = (await t.send({ name: 'caption', attachment: photo() })).reply;
    expect(reply.text).toBe('I can\'t describe this picture reliably: it doesn\'t look like the pictures my captioner was trained on '
      + '(drawn shapes and emoji on plain backgrounds), so a caption would likely be wrong. This one is not charged.\n'
      + 'My best guess, probably wrong: "A big red circle."');
    expect(reply.error).toBeUndefined();
    expect(reply.silent).toBeUndefined();
    expect(reply.voice).toBeUndefined();
    expect(t.core.of('speak')).toHaveLength(0);
    expect(await t.store.usage('space1', 'u1', 'caption', '2025-06-01')).toEqual({ reserved: 0, charged: 0, refunded: 1 });
    const job = await t.store.getJob(reply.jobId!);
    expect(job?.state).toBe('succeeded');
    expect(job?.settings).toMatchObject({ declined: true, guess: 'A big red circle.', domainScore: 6.2 });
  });

  it('stays silent when nobody asked (Slack auto-captioning), still refunded', async () => {
    const t = makeBot();
    t.core.behaviour.caption = outOfDomain;
    const reply = (await t.send({ name: 'caption', attachment: photo(), auto: true })).reply;
    expect(reply).toEqual({ text: '', silent: true, jobId: reply.jobId });
    expect(t.core.of('speak')).toHaveLength(0);
    expect((await t.store.usage('space1', 'u1', 'caption', '2025-06-01')).refunded).toBe(1);
  });

  it('captions an in-domain picture as before, also when auto-captioning, and charges it', async () => {
    const t = makeBot();
    t.core.behaviour.caption = (input) => ({ ...outOfDomain(input), caption: 'A red circle.', inDomain: true, domainScore: 0.2 });
    const reply = (await t.send({ name: 'caption', attachment: photo(), auto: true })).reply;
    expect(reply.text).toBe('A red circle.');
    expect(reply.silent).toBeUndefined();
    expect(reply.voice).toBeDefined();
    expect((await t.store.usage('space1', 'u1', 'caption', '2025-06-01')).charged).toBe(1);
  });

  it('reads a result without the field (an older worker) as in domain', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'caption', attachment: photo() })).reply;
    expect(reply.text).toBe('A drawing of a beach at sunset.');
  });
});

describe('alt text of generated images', () => {
  it('falls back to the prompt when the captioner declines the picture', async () => {
    const t = makeBot();
    t.core.behaviour.caption = outOfDomain;
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a photo of a beach', seed: 3 } })).reply;
    expect(reply.images?.map((image) => image.altText)).toEqual(['a photo of a beach']);
  });
});
