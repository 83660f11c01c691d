import sharp from 'sharp';
import type { CreateRaw, Sharp } from 'sharp';
import { deflateSync } from 'node:zlib';
import {
  chwToRgb, decodeImage, encodePng, imageToTensor, readPngText, rgbToTensor, sniffFormat, withTextChunks,
} from '../../inference/image.codec.js';

/** A 4x2 image: left half red, right half blue. */
async function redBlue(format: 'png' | 'jpeg' | 'webp' | 'gif', extra?: (image: Sharp) => Sharp): Promise<Buffer> {
  const pixels = Buffer.alloc(4 * 2 * 3);
  for (let y = 0; y < 2; y += 1) {
    for (let x = 0; x < 4; x += 1) pixels.set(x < 2 ? [255, 0, 0] : [0, 0, 255], (y * 4 + x) * 3);
  }
  let image = sharp(pixels, { raw: { width: 4, height: 2, channels: 3 } });
  if (extra) image = extra(image);
  if (format === 'jpeg') return image.jpeg({ quality: 100 }).toBuffer();
  if (format === 'webp') return image.webp({ lossless: true }).toBuffer();
  if (format === 'gif') return image.gif().toBuffer();
  return image.png().toBuffer();
}

const pixel = (image: { data: Buffer; width: number }, x: number, y: number): number[] =>
  Array.from(image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));

describe('image codec: decoding untrusted images', () => {
  it('sniffs formats from bytes, not names', async () => {
    expect(sniffFormat(await redBlue('png'))).toBe('png');
    expect(sniffFormat(await redBlue('jpeg'))).toBe('jpeg');
    expect(sniffFormat(await redBlue('webp'))).toBe('webp');
    expect(sniffFormat(await redBlue('gif'))).toBe('gif');
    expect(sniffFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
  });

  it('decodes PNG and lossless WebP to the same RGB pixels', async () => {
    for (const format of ['png', 'webp'] as const) {
      const image = await decodeImage(await redBlue(format));
      expect([image.width, image.height, image.format]).toEqual([4, 2, format]);
      expect(pixel(image, 0, 0)).toEqual([255, 0, 0]);
      expect(pixel(image, 3, 1)).toEqual([0, 0, 255]);
    }
  });

  it('honours EXIF orientation 6 (rotate 90° clockwise) on a JPEG', async () => {
    const jpeg = await redBlue('jpeg', (image) => image.withMetadata({ orientation: 6 }));
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const image = await decodeImage(jpeg);
    // 4x2 rotated clockwise is 2x4: red (the left half) ends up on top.
    expect([image.width, image.height]).toEqual([2, 4]);
    const top = pixel(image, 0, 0);
    const bottom = pixel(image, 1, 3);
    expect(top[0]!).toBeGreaterThan(200);
    expect(top[2]!).toBeLessThan(60);
    expect(bottom[2]!).toBeGreaterThan(200);
    expect(bottom[0]!).toBeLessThan(60);
  });

  it('takes the first frame of an animated GIF', async () => {
    // Two 3x3 frames stacked vertically: green, then black.
    const frames = Buffer.alloc(3 * 6 * 3);
    for (let i = 0; i < 9; i += 1) frames.set([0, 255, 0], i * 3);
    const gif = await sharp(frames, { raw: { width: 3, height: 6, channels: 3, pageHeight: 3 } as CreateRaw })
      .gif({ delay: [100, 100] }).toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const image = await decodeImage(gif);
    expect([image.width, image.height]).toEqual([3, 3]);
    expect(pixel(image, 1, 1)).toEqual([0, 255, 0]);
  });

  it('flattens transparency onto white', async () => {
    const rgba = await sharp({ create: { width: 2, height: 2, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    expect(pixel(await decodeImage(rgba), 0, 0)).toEqual([255, 255, 255]);
  });

  it('rejects corrupt, truncated and unsupported bytes with specific codes', async () => {
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).png().toBuffer();
    const corrupt = Buffer.from(png);
    corrupt.fill(0x5a, 40, 60); // inside IHDR/IDAT: CRC and data broken
    await expect(decodeImage(corrupt)).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(decodeImage(png.subarray(0, png.length - 30))).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringMatching(/PNG/) });
    const jpeg = await redBlue('jpeg');
    await expect(decodeImage(jpeg.subarray(0, 200))).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(decodeImage(Buffer.from('GIF89a but nothing else'))).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(decodeImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')))
      .rejects.toMatchObject({ code: 'input.unsupported' });
    const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]);
    await expect(decodeImage(bmp)).rejects.toMatchObject({ code: 'input.unsupported' });
    await expect(decodeImage(Buffer.alloc(0))).rejects.toMatchObject({ code: 'input.invalid' });
  });

  it('refuses a decompression bomb: a tiny PNG whose header declares 100000x100000 pixels', async () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(100_000, 0);
    ihdr.writeUInt32BE(100_000, 4);
    ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
    const idat = deflateSync(Buffer.alloc(1024));
    const bomb = withChunks([['IHDR', ihdr], ['IDAT', idat], ['IEND', Buffer.alloc(0)]]);
    expect(bomb.length).toBeLessThan(200);
    await expect(decodeImage(bomb)).rejects.toMatchObject({ code: 'input.too_large' });
  });

  it('refuses a real image over the pixel limit and bytes over the byte limit', async () => {
    const big = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#000' } }).png().toBuffer();
    await expect(decodeImage(big, { maxPixels: 100_000 })).rejects.toMatchObject({ code: 'input.too_large', message: expect.stringContaining('100000') });
    await expect(decodeImage(big, { maxBytes: 100 })).rejects.toMatchObject({ code: 'input.too_large', message: expect.stringContaining(`${big.length} bytes`) });
    await expect(decodeImage(big, { maxPixels: 120_000 })).resolves.toMatchObject({ width: 400, height: 300 });
  });
});

describe('image codec: tensors and PNG output', () => {
  it('resizes and normalises into CHW per channel, into a batch buffer at an offset', async () => {
    const png = await redBlue('png');
    const out = new Float32Array(2 * 3 * 2 * 4);
    await imageToTensor(png, { size: [2, 4], mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5], kernel: 'nearest' }, out, 3 * 2 * 4);
    expect(Array.from(out.subarray(0, 24)).every((v) => v === 0)).toBe(true);
    const second = out.subarray(24);
    expect(second[0]).toBeCloseTo(1);        // R plane, (0, 0): red = (1 - 0.5) / 0.5
    expect(second[3]).toBeCloseTo(-1);       // R plane, (3, 0): blue has no red
    expect(second[8]).toBeCloseTo(-2);       // G plane: (0 - 0.5) / 0.25
    expect(second[16 + 3]).toBeCloseTo(1);   // B plane, (3, 0)
    const resized = await imageToTensor(png, { size: [8, 8], mean: [0, 0, 0], std: [1, 1, 1] });
    expect(resized.length).toBe(3 * 64);
    await expect(imageToTensor(png, { size: [8, 8], mean: [0, 0], std: [1, 1, 1] })).rejects.toMatchObject({ code: 'config.invalid' });
  });

  it('normalises RGB pixels in memory exactly as it does their lossless PNG, at the target size and resized', async () => {
    const chw = Float32Array.from({ length: 3 * 12 * 10 }, (_, i) => Math.sin(i * 7.31) * 1.05);
    const rgb = { rgb: chwToRgb(chw, 12, 10), width: 12, height: 10 };
    const png = await encodePng(chw, 12, 10);
    for (const [size, kernel] of [[[10, 12], 'bilinear'], [[7, 9], 'bilinear'], [[20, 24], 'nearest']] as const) {
      const options = { size, mean: [0.5, 0.4, 0.3], std: [0.25, 0.5, 0.2], kernel };
      const fromPixels = new Float32Array(2 * 3 * size[0] * size[1]);
      await rgbToTensor(rgb, options, fromPixels, 3 * size[0] * size[1]);
      const fromPng = await imageToTensor(png, options);
      expect(Array.from(fromPixels.subarray(3 * size[0] * size[1]))).toEqual(Array.from(fromPng));
    }
    await expect(rgbToTensor({ ...rgb, width: 11 }, { size: [10, 12], mean: [0, 0, 0], std: [1, 1, 1] })).rejects.toMatchObject({ code: 'input.invalid' });
    await expect(rgbToTensor(rgb, { size: [10, 12], mean: [0, 0, 0], std: [0, 1, 1] })).rejects.toMatchObject({ code: 'config.invalid' });
  });

  it('encodes [-1, 1] CHW floats as PNG the way diffusers rounds them', async () => {
    const chw = new Float32Array(3 * 2 * 2);
    chw.fill(-1, 0, 4);          // R = 0
    chw.fill(0, 4, 8);           // G = round(127.5) = 128
    chw.fill(2, 8, 12);          // B clipped to 255
    chw[0] = Number.NaN;
    const png = await encodePng(chw, 2, 2);
    const image = await decodeImage(png);
    expect(pixel(image, 1, 1)).toEqual([0, 128, 255]);
    expect(pixel(image, 0, 0)).toEqual([0, 128, 255]);
  });

  it('writes text metadata that sharp and our reader both see, Unicode prompts included', async () => {
    const chw = new Float32Array(3 * 4 * 4);
    const text = { prompt: 'a red 🍎 under a blue circle', negative_prompt: 'blurry', seed: '42', model: 'tiny' };
    const png = await encodePng(chw, 4, 4, { text, aiGenerated: true });
    const read = readPngText(png);
    expect(read).toMatchObject({ ...text, ai_generated: 'true', Software: 'pictalk' });
    expect(read['XML:com.adobe.xmp']).toContain('trainedAlgorithmicMedia');
    const comments = (await sharp(png).metadata()).comments ?? [];
    expect(comments).toEqual(expect.arrayContaining([{ keyword: 'seed', text: '42' }, { keyword: 'ai_generated', text: 'true' }]));
    expect(comments.find((c) => c.keyword === 'prompt')?.text).toBe(text.prompt);
    // The file is still a valid PNG for a strict decoder.
    await expect(decodeImage(png)).resolves.toMatchObject({ width: 4, height: 4 });
  });

  it('round-trips arbitrary pixels through its own PNG writer exactly', async () => {
    const chw = Float32Array.from({ length: 3 * 37 * 23 }, (_, i) => Math.sin(i * 12.9898) * 1.1);
    const image = await decodeImage(await encodePng(chw, 37, 23, { upscale: 2 }));
    expect([image.width, image.height]).toEqual([74, 46]);
    for (const [x, y] of [[0, 0], [36, 22], [17, 5]] as const) {
      const expected = [0, 1, 2].map((c) => {
        const v = chw[c * 37 * 23 + y * 37 + x]! / 2 + 0.5;
        return Math.round(Math.min(1, Math.max(0, v)) * 255);
      });
      expect(pixel(image, 2 * x, 2 * y)).toEqual(expected);
      expect(pixel(image, 2 * x + 1, 2 * y + 1)).toEqual(expected);
    }
  });

  it('is deterministic: the same pixels and text give the same bytes', async () => {
    const chw = Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => Math.sin(i));
    const a = await encodePng(chw, 8, 8, { text: { seed: '1' }, aiGenerated: true });
    const b = await encodePng(chw, 8, 8, { text: { seed: '1' }, aiGenerated: true });
    expect(a.equals(b)).toBe(true);
  });

  it('upscales by an integer factor, nearest keeps hard edges, lanczos smooths them', async () => {
    const chw = new Float32Array(3 * 2 * 2).fill(-1);
    chw[0] = 1; // top-left red
    const nearest = await decodeImage(await encodePng(chw, 2, 2, { upscale: 4 }));
    expect([nearest.width, nearest.height]).toEqual([8, 8]);
    expect(pixel(nearest, 3, 3)).toEqual([255, 0, 0]);
    expect(pixel(nearest, 4, 3)).toEqual([0, 0, 0]);
    const lanczos = await decodeImage(await encodePng(chw, 2, 2, { upscale: 4, upscaleKernel: 'lanczos' }));
    expect([lanczos.width, lanczos.height]).toEqual([8, 8]);
    expect(pixel(lanczos, 4, 3)[0]).toBeGreaterThan(0);
    await expect(encodePng(chw, 2, 2, { upscale: 1.5 })).rejects.toMatchObject({ code: 'input.invalid', message: expect.stringContaining('1.5') });
    await expect(encodePng(chw, 2, 2, { upscale: 9 })).rejects.toMatchObject({ code: 'input.invalid' });
  });

  it('leaves a PNG alone when there is no text to add', async () => {
    const png = await redBlue('png');
    expect(withTextChunks(png, {})).toBe(png);
  });
});

/** Build a PNG from raw chunks (CRC computed by encodePng's own writer through withTextChunks is not reused here). */
function withChunks(chunks: [string, Buffer][]): Buffer {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer): number => {
    let c = 0xffffffff;
    for (const b of bytes) c = table[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const parts: Buffer[] = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([head.subarray(4), data])), 0);
    parts.push(head, data, tail);
  }
  return Buffer.concat(parts);
}
