import { PictalkError } from '../../../common/errors.js';
import type { Attachment } from '../../../bot/types.js';
import { makeBot } from '../helpers.js';

const image = (extra: Partial<Attachment> = {}): Attachment & { fetched: number[] } => {
  const fetched: number[] = [];
  return {
    name: 'photo.png', contentType: 'image/png', size: 2048, fetched,
    fetch: async (maxBytes: number) => { fetched.push(maxBytes); return Buffer.from('png:a red circle'); },
    ...extra,
  };
};

describe('/caption', () => {
  it('replies with the caption and a voice message of it', async () => {
    const t = makeBot();
    const attachment = image();
    const conversation = await t.send({ name: 'caption', attachment });
    const reply = conversation.reply;
    expect(reply.text).toBe('A drawing of a red circle.');
    expect(reply.voice).toEqual({ name: `pictalk-${reply.jobId}.ogg`, ogg: Buffer.from('ogg:A drawing of a red circle.'), durationSecs: 1.5, waveform: new Uint8Array(256) });
    expect(attachment.fetched).toEqual([8 * 1024 * 1024]);
    expect(t.core.of('speak')[0]!.input).toEqual({ kind: 'speak', request: { text: 'A drawing of a red circle.' } });
    expect(conversation.statuses.map((s) => s.state === 'running' ? s.stage : s.state)).toContain('voice');
    expect((await t.store.usage('space1', 'u1', 'caption', '2025-06-01')).charged).toBe(1);
  });

  it('still returns the caption, with a note, when the voice fails', async () => {
    const t = makeBot();
    t.core.behaviour.speak = () => { throw new PictalkError('inference.failed', 'tts broke'); };
    const reply = (await t.send({ name: 'caption', attachment: image() })).reply;
    expect(reply.text).toBe('A drawing of a red circle.\n(No voice message this time: the voice engine failed.)');
    expect(reply.voice).toBeUndefined();
    expect(reply.error).toBeUndefined();
    expect((await t.store.usage('space1', 'u1', 'caption', '2025-06-01')).charged).toBe(1);
  });

  it('skips the voice when asked', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'caption', attachment: image(), voice: false })).reply;
    expect(reply.voice).toBeUndefined();
    expect(t.core.of('speak')).toHaveLength(0);
  });

  it('refuses what is not an image before fetching or reserving anything', async () => {
    const t = makeBot();
    const pdf = image({ name: 'report.pdf', contentType: 'application/pdf' });
    const reply = (await t.send({ name: 'caption', attachment: pdf })).reply;
    expect(reply.error).toEqual({ code: 'input.unsupported', retryable: false });
    expect(reply.text).toBe('`report.pdf` is not an image (application/pdf); I can caption PNG, JPEG, WebP or GIF images.');
    expect(pdf.fetched).toEqual([]);
    expect((await t.store.usage('space1', 'u1', 'caption', '2025-06-01'))).toEqual({ reserved: 0, charged: 0, refunded: 0 });
  });

  it('refuses an image type it cannot read, and guesses from the name when no type is declared', async () => {
    const t = makeBot();
    expect((await t.send({ name: 'caption', attachment: image({ name: 'x.heic', contentType: 'image/heic' }) })).reply.text)
      .toBe('`x.heic` is a image/heic image; I can caption PNG, JPEG, WebP or GIF images.');
    const { contentType: _dropped, ...untyped } = image({ name: 'notes.txt' });
    expect((await t.send({ name: 'caption', attachment: untyped })).reply.error?.code).toBe('input.unsupported');
  });

  it('refuses a declared size over the limit', async () => {
    const t = makeBot({ maxAttachmentBytes: 1024 });
    const big = image({ size: 3 * 1024 * 1024 });
    const reply = (await t.send({ name: 'caption', attachment: big })).reply;
    expect(reply.error?.code).toBe('input.too_large');
    expect(reply.text).toBe('`photo.png` is 3.0 MiB; the limit is 1.0 KiB.');
    expect(big.fetched).toEqual([]);
  });

  it('refunds when the fetched bytes pass the limit the platform lied about', async () => {
    const t = makeBot({ maxAttachmentBytes: 4 });
    const reply = (await t.send({ name: 'caption', attachment: image({ size: 3 }) })).reply;
    expect(reply.error?.code).toBe('input.too_large');
    expect(reply.text).toContain('Your quota was refunded.');
    expect((await t.store.usage('space1', 'u1', 'caption', '2025-06-01')).refunded).toBe(1);
  });

  it('passes a decoding error from the pipeline through, refunded', async () => {
    const t = makeBot();
    t.core.behaviour.caption = () => { throw new PictalkError('input.unsupported', 'Expected a PNG, JPEG, WebP or GIF image, got bytes starting with `25 50 44 46`'); };
    const reply = (await t.send({ name: 'caption', attachment: image() })).reply;
    expect(reply.text).toBe('Expected a PNG, JPEG, WebP or GIF image, got bytes starting with `25 50 44 46`. Your quota was refunded.');
  });

  it('turns a failed download into a reply', async () => {
    const t = makeBot();
    const reply = (await t.send({ name: 'caption', attachment: image({ fetch: async () => { throw new Error('ECONNRESET'); } }) })).reply;
    expect(reply.error?.code).toBe('input.invalid');
    expect(reply.text).toContain('Could not download `photo.png`: ECONNRESET');
  });
});
