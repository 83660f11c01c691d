import type { ImagineRequest, JobResult } from '../../../inference/types.js';
import { buttonCommand, buttonValue, parseButtonValue } from '../../../bot/buttons.js';
import { RecentPictures } from '../../../bot/recent.pictures.js';
import { SqliteStore } from '../../../bot/sqlite.store.js';
import type { Attachment } from '../../../bot/types.js';
import { actor, defaultResult, makeBot } from '../helpers.js';

// the smallest files whose magic bytes say PNG and JPEG; the fake core does not decode them
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 4, 5]);

function upload(bytes: Buffer, name = 'start.png', contentType = 'image/png'): Attachment & { fetched: number } {
  const attachment = {
    name, contentType, size: bytes.length, fetched: 0,
    async fetch(): Promise<Buffer> { attachment.fetched += 1; return bytes; },
  };
  return attachment;
}

const requestOf = (t: ReturnType<typeof makeBot>, index: number): ImagineRequest => t.core.of('imagine')[index]!.input.request as ImagineRequest;
const charged = async (t: ReturnType<typeof makeBot>, user = 'u1'): Promise<number> => (await t.store.usage('space1', user, 'imagine', '2025-06-01')).charged;

describe('/imagine with a picture to start from', () => {
  it('sends the picture and the strength to the core, and records where the picture came from', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a red circle', image: upload(PNG), strength: 0.4, seed: 3 } })).reply;
    expect(reply.error).toBeUndefined();
    const request = requestOf(t, 0);
    expect(request.image?.equals(PNG)).toBe(true);
    expect(request.strength).toBe(0.4);
    const job = await t.store.getJob(reply.jobId!);
    expect((job?.settings.options as Record<string, unknown>)).toMatchObject({
      strength: 0.4, source: { kind: 'upload', name: 'start.png', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
    expect(await charged(t)).toBe(1);
  });

  it('says in the reply that the images started from a picture, at which strength', async () => {
    const t = makeBot();
    t.core.behaviour.imagine = (input) => {
      const result = defaultResult(input) as Extract<JobResult, { kind: 'imagine' }>;
      const request = input.request as ImagineRequest;
      return { ...result, settings: { ...result.settings, ...(request.strength !== undefined ? { strength: request.strength } : {}) } };
    };
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a red circle', image: upload(PNG), strength: 0.4, seed: 3 } })).reply;
    expect(reply.text).toBe('a red circle\nseed 3 · 20 steps · guidance 7.5 · pndm · 64×64 · from a picture at strength 0.4');
  });

  it('takes the strength from the user\'s settings, else 0.6', async () => {
    const t = makeBot();
    await t.send({ name: 'imagine', options: { prompt: 'a red circle', image: upload(JPEG, 'start.jpg', 'image/jpeg') } });
    expect(requestOf(t, 0).strength).toBe(0.6);
    await t.send({ name: 'settings.set', scope: 'user', values: { strength: '0.35' } });
    await t.send({ name: 'imagine', options: { prompt: 'a red circle', image: upload(PNG) } });
    expect(requestOf(t, 1).strength).toBe(0.35);
    await t.send({ name: 'imagine', options: { prompt: 'a red circle', image: upload(PNG), strength: 0.9 } });
    expect(requestOf(t, 2).strength).toBe(0.9);
  });

  it.each([
    [{ image: upload(PNG), strength: 7 }, 'input.invalid', 'Expected `strength` to be a number greater than 0 and at most 1, got `7` (number)'],
    [{ image: upload(PNG), strength: 0 }, 'input.invalid', 'Expected `strength` to be a number greater than 0 and at most 1, got `0` (number)'],
    [{ strength: 0.5 }, 'input.invalid', 'Expected an `image` to start from with `strength` 0.5, got none'],
    [{ image: upload(Buffer.from('hello, not a picture'), 'notes.png') }, 'input.unsupported', '`notes.png` is not a PNG, JPEG, WebP or GIF picture, so image-to-image cannot start from it'],
    [{ image: upload(Buffer.alloc(0), 'empty.png') }, 'input.invalid', '`empty.png` is empty, so image-to-image has no picture to start from'],
  ])('refuses %j with a specific message, charging nothing and running nothing', async (extra, code, message) => {
    const t = makeBot();
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a red circle', ...extra } as never })).reply;
    expect(reply.error?.code).toBe(code);
    expect(reply.text).toContain(message);
    expect(t.core.jobs).toHaveLength(0);
    expect(await charged(t)).toBe(0);
    expect((await t.store.usage('space1', 'u1', 'imagine', '2025-06-01')).reserved).toBe(0);
  });

  it('refuses a picture over the attachment limit before downloading it', async () => {
    const t = makeBot({ maxAttachmentBytes: 1024 });
    const big = { ...upload(PNG), size: 4096 };
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'a red circle', image: big } })).reply;
    expect(reply.error?.code).toBe('input.too_large');
    expect(big.fetched).toBe(0);
    expect(t.core.jobs).toHaveLength(0);
  });
});

describe('the Vary button', () => {
  it('sits under every image, with the image\'s number', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'imagine', options: { prompt: 'two cats', count: 2, seed: 40 } })).reply;
    expect(reply.buttons).toEqual([
      { action: 'reroll', jobId: reply.jobId, label: 'Reroll', style: 'primary' },
      { action: 'vary', jobId: reply.jobId, index: 1, label: 'Vary 1', style: 'secondary' },
      { action: 'vary', jobId: reply.jobId, index: 2, label: 'Vary 2', style: 'secondary' },
      { action: 'delete', jobId: reply.jobId, label: 'Delete', style: 'danger' },
    ]);
    const single = (await t.send({ name: 'imagine', options: { prompt: 'one cat' } })).reply;
    expect(single.buttons?.filter((b) => b.action === 'vary')).toEqual([{ action: 'vary', jobId: single.jobId, index: 1, label: 'Vary', style: 'secondary' }]);
  });

  it('starts from that image with the same prompt, a new seed and the presser\'s strength, charged like a reroll', async () => {
    const t = makeBot();
    const first = (await t.send({ name: 'imagine', options: { prompt: 'two cats', count: 2, steps: 12, seed: 40 } })).reply;
    const presser = actor('u2');
    await t.send({ name: 'settings.set', scope: 'user', values: { strength: 0.45 } }, presser);
    const varied = (await t.send({ name: 'vary', jobId: first.jobId!, index: 2 }, presser)).reply;
    expect(varied.error).toBeUndefined();
    expect(t.core.of('imagine')).toHaveLength(2);                     // the picture came from memory: no redraw
    const request = requestOf(t, 1);
    expect(request.image?.equals(first.images![1]!.png)).toBe(true);
    expect(request).toMatchObject({ prompt: 'two cats', steps: 12, count: 2, seed: 1000, strength: 0.45 });
    const job = await t.store.getJob(varied.jobId!);
    expect(job?.parentJobId).toBe(first.jobId);
    expect(job?.settings.options).toMatchObject({ source: { kind: 'job', jobId: first.jobId, index: 2 }, strength: 0.45 });
    expect(await charged(t, 'u2')).toBe(2);
    // a reroll of the variation starts from the same picture at the same strength
    const rerolled = (await t.send({ name: 'reroll', jobId: varied.jobId! }, presser)).reply;
    expect(rerolled.error).toBeUndefined();
    expect(requestOf(t, 2).image?.equals(first.images![1]!.png)).toBe(true);
    expect(requestOf(t, 2)).toMatchObject({ strength: 0.45, seed: 1001 });
  });

  it('redraws the picture from the job\'s settings when this process no longer has it, without charging the redraw', async () => {
    const store = new SqliteStore(':memory:');
    const before = makeBot({}, { store });
    const first = (await before.send({ name: 'imagine', options: { prompt: 'two cats', count: 2, steps: 12, seed: 40 } })).reply;
    const after = makeBot({}, { store });                               // another front, or a restart: nothing in memory
    const varied = (await after.send({ name: 'vary', jobId: first.jobId!, index: 2 })).reply;
    expect(varied.error).toBeUndefined();
    const [redraw, variation] = after.core.of('imagine').map((job) => job.input.request as ImagineRequest);
    expect(redraw).toMatchObject({ prompt: 'two cats', seed: 40, steps: 12, count: 2, candidates: 1 });   // the whole batch again
    expect(redraw!.image).toBeUndefined();
    expect(variation!.image?.equals(first.images![1]!.png)).toBe(true); // the fake core draws `png:<prompt>:<seed>`
    expect((await store.usage('space1', 'u1', 'imagine', '2025-06-01')).charged).toBe(2 + 2);
  });

  it('refuses an image number the job does not have, another space\'s job and a caption job, charging nothing', async () => {
    const t = makeBot();
    const first = (await t.send({ name: 'imagine', options: { prompt: 'two cats', count: 2 } })).reply;
    const bad = (await t.send({ name: 'vary', jobId: first.jobId!, index: 3 })).reply;
    expect(bad.error?.code).toBe('input.invalid');
    expect(bad.text).toContain(`Expected the image to vary to be an integer from 1 to 2 (the images of job \`${first.jobId}\`), got \`3\` (number)`);
    const elsewhere = (await t.send({ name: 'vary', jobId: first.jobId! }, actor('u1', { spaceId: 'elsewhere' }))).reply;
    expect(elsewhere.text).toBe(`No job \`${first.jobId}\` here.`);
    const caption = (await t.send({ name: 'caption', attachment: upload(PNG) })).reply;
    expect((await t.send({ name: 'vary', jobId: caption.jobId! })).reply.text).toContain('is not an image job, so it has no picture to vary');
    expect(t.core.of('imagine')).toHaveLength(1);
    expect(await charged(t)).toBe(2);
  });
});

describe('button values', () => {
  it('carry the image number of a per-image button and read back', () => {
    expect(buttonValue({ jobId: 'jAbc-_1' })).toBe('jAbc-_1');
    expect(buttonValue({ jobId: 'jAbc-_1', index: 3 })).toBe('jAbc-_1#3');
    expect(parseButtonValue('jAbc-_1#3')).toEqual({ jobId: 'jAbc-_1', index: 3 });
    expect(buttonCommand('vary', 'jAbc#2')).toEqual({ name: 'vary', jobId: 'jAbc', index: 2 });
    expect(buttonCommand('vary', 'jAbc')).toEqual({ name: 'vary', jobId: 'jAbc' });
    expect(buttonCommand('reroll', 'jAbc')).toEqual({ name: 'reroll', jobId: 'jAbc' });
    for (const value of ['', '#2', 'jAbc#', 'jAbc#x', 'a#1#2']) expect(buttonCommand('vary', value)).toBeUndefined();
    expect(buttonCommand('delete', 'jAbc#2')).toBeUndefined();
  });

  it('keep recent pictures within their byte budget, the least recently used leaving first', () => {
    const pictures = new RecentPictures(10);
    pictures.set('a', Buffer.alloc(4));
    pictures.set('b', Buffer.alloc(4));
    pictures.get('a');
    pictures.set('c', Buffer.alloc(4));
    expect([pictures.get('a')?.length, pictures.get('b'), pictures.get('c')?.length]).toEqual([4, undefined, 4]);
    pictures.set('huge', Buffer.alloc(11));
    expect(pictures.get('huge')).toBeUndefined();
  });
});
