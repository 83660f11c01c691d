/**
 * The image codec: the only module that imports sharp.
 *
 * Decoding treats every image as untrusted: the format is sniffed from the bytes (not the name or the platform's
 * content type), bytes and pixels are limited before any pixel is decoded (a decompression bomb declares huge
 * dimensions in a tiny file), EXIF orientation is applied, animations give their first frame, and alpha is
 * flattened onto white. Encoding turns a decoder's CHW float output into a PNG that says what made it.
 */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { KernelEnum, Metadata, Sharp, SharpOptions } from 'sharp';
import { PictalkError, describe } from '../common/errors.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp', 'gif'];

export interface DecodeLimits {
  /** Largest accepted file; 20 MiB by default (Discord's own attachment limit without boosts is lower). */
  maxBytes?: number;
  /** Largest accepted width x height; 40 megapixels by default. */
  maxPixels?: number;
}

export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
export const DEFAULT_MAX_PIXELS = 40_000_000;

/** 8-bit RGB pixels, row-major HWC, after orientation. */
export interface RgbImage {
  data: Buffer;      // [H, W, 3]
  width: number;
  height: number;
  format: ImageFormat;
}

export type ResizeKernel = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';

export interface TensorOptions extends DecodeLimits {
  /** Target [H, W]; the image is stretched to it (torchvision's Resize((H, W)) does the same) when it differs. */
  size: readonly [number, number];
  /** Per-channel mean and std applied after scaling to 0..1. */
  mean: readonly number[];
  std: readonly number[];
  kernel?: ResizeKernel;
}

export interface EncodeOptions {
  /** Text chunks: tEXt for Latin-1 values, iTXt (UTF-8) otherwise. Keys are 1-79 Latin-1 characters. */
  text?: Record<string, string>;
  /** Mark the PNG as AI-generated: `ai_generated: true`, `Software: pictalk` and the IPTC digital source type in XMP. */
  aiGenerated?: boolean;
  /** Integer upscale factor, 1 (default) to 8. */
  upscale?: number;
  upscaleKernel?: 'nearest' | 'lanczos';
}

const SHARP_KERNEL: Record<ResizeKernel, keyof KernelEnum> = {
  nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3',
};

/** The format from the magic bytes, or undefined for anything else (SVG, TIFF, BMP, text...). */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (offset: number, ascii: string): boolean =>
    bytes.length >= offset + ascii.length && [...ascii].every((ch, i) => bytes[offset + i] === ch.charCodeAt(0));
  if (bytes.length >= 8 && bytes[0] === 0x89 && at(1, 'PNG\r\n\x1a\n')) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  return undefined;
}

function limitsOf(limits: DecodeLimits): { maxBytes: number; maxPixels: number } {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  for (const [name, value] of [['maxBytes', maxBytes], ['maxPixels', maxPixels]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new PictalkError('config.invalid', `Expected \`${name}\` to be a positive integer, got ${describe(value)}`);
    }
  }
  return { maxBytes, maxPixels };
}

/** Map sharp's (libvips') messages onto pictalk's codes. */
function decodeError(error: unknown, format: ImageFormat, maxPixels: number): PictalkError {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return new PictalkError('input.too_large',
      `Expected an image of at most ${maxPixels} pixels, got one whose header declares more`, { maxPixels }, { cause: error });
  }
  if (/unsupported image format/i.test(message)) {
    return new PictalkError('input.unsupported', `Expected a PNG, JPEG, WebP or GIF image, got one sharp cannot read`, {}, { cause: error });
  }
  const truncated = /premature end|truncated|unexpected end|not enough data|end of (file|stream)/i.test(message);
  return new PictalkError('input.invalid',
    `Expected a valid ${format.toUpperCase()} image, got ${truncated ? 'a truncated' : 'a corrupt'} one (${message.split('\n')[0]})`,
    { format }, { cause: error });
}

/** Check the bytes before any decoding: a buffer, not too many bytes, one of the four formats by its magic bytes. */
function preflight(bytes: Buffer, limits: DecodeLimits): { format: ImageFormat; maxPixels: number; options: SharpOptions } {
  const { maxBytes, maxPixels } = limitsOf(limits);
  if (!Buffer.isBuffer(bytes) || bytes.length === 0) {
    throw new PictalkError('input.invalid', `Expected image bytes, got ${Buffer.isBuffer(bytes) ? 'an empty buffer' : describe(bytes)}`);
  }
  if (bytes.length > maxBytes) {
    throw new PictalkError('input.too_large', `Expected an image of at most ${maxBytes} bytes, got ${bytes.length} bytes`, { maxBytes });
  }
  const format = sniffFormat(bytes);
  if (!format) {
    throw new PictalkError('input.unsupported', 'Expected a PNG, JPEG, WebP or GIF image, got bytes of another kind');
  }
  // failOn 'error' rejects truncated and corrupt pixel data but tolerates harmless warnings (extraneous JPEG bytes);
  // limitInputPixels rejects a decompression bomb from its header, before any pixel is decoded.
  return { format, maxPixels, options: { limitInputPixels: maxPixels, failOn: 'error', pages: 1, autoOrient: true } };
}

/** Validate the bytes and return a sharp pipeline that yields the oriented, flattened first frame. */
async function openImage(bytes: Buffer, limits: DecodeLimits): Promise<{ image: Sharp; format: ImageFormat; width: number; height: number }> {
  const { format, maxPixels, options } = preflight(bytes, limits);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, options).metadata();
  } catch (error) {
    throw decodeError(error, format, maxPixels);
  }
  if (meta.format !== format) {
    throw new PictalkError('input.invalid', `Expected a ${format.toUpperCase()} image as its header says, got data sharp reads as ${meta.format}`);
  }
  // With pages: 1, an animated GIF/WebP reports one frame's height; autoOrient gives the dimensions after rotation.
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (width * height > maxPixels) {
    throw new PictalkError('input.too_large', `Expected an image of at most ${maxPixels} pixels, got ${width}x${height}`, { maxPixels });
  }
  const image = sharp(bytes, options).flatten({ background: '#ffffff' }).toColourspace('srgb').removeAlpha();
  return { image, format, width, height };
}

/** Decode PNG/JPEG/WebP/GIF bytes into 8-bit RGB, orientation applied, first frame of an animation. */
export async function decodeImage(bytes: Buffer, limits: DecodeLimits = {}): Promise<RgbImage> {
  const { image, format } = await openImage(bytes, limits);
  try {
    const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, format };
  } catch (error) {
    throw decodeError(error, format, limitsOf(limits).maxPixels);
  }
}

/** An image as bytes of a file (PNG, JPEG, WebP, GIF), or as RGB pixels a pipeline holds already. */
export type ImageInput = Buffer | RgbPixels;

/**
 * Decode, resize to `size` and normalise into a CHW float tensor: ((pixel / 255) - mean[c]) / std[c]. Pixels in memory
 * skip the decoding (`rgbToTensor`). Writes into `out` at `offset` when given (a batch buffer [B, 3, H, W]), else
 * returns a new [3, H, W] array.
 */
export async function imageToTensor(image: ImageInput, options: TensorOptions, out?: Float32Array, offset = 0): Promise<Float32Array> {
  // anything but pixels is read as bytes, whose checks name what came instead
  if (!Buffer.isBuffer(image) && typeof image === 'object' && image !== null && 'rgb' in image) return rgbToTensor(image, options, out, offset);
  const bytes = image as Buffer;
  const [height, width] = checkTensorOptions(options);
  // One sharp call per image (no separate header read): its work runs on sharp's threads from start to end, so a
  // batch of images decodes while this thread runs the models. Resizing to the size the image already has is a
  // no-op in sharp, as the captioner's training preprocessing resizes only when the size differs.
  const { format, maxPixels, options: sharpOptions } = preflight(bytes, options);
  let data: Buffer;
  try {
    data = await sharp(bytes, sharpOptions).flatten({ background: '#ffffff' }).toColourspace('srgb').removeAlpha()
      .resize(width, height, { fit: 'fill', kernel: SHARP_KERNEL[options.kernel ?? 'bilinear'] })
      .raw().toBuffer();
  } catch (error) {
    throw decodeError(error, format, maxPixels);
  }
  return normalise(data, options, out, offset);
}

/** 8-bit RGB pixels a pipeline holds already (a picture it generated): row-major [H, W, 3], no container. */
export interface RgbPixels {
  rgb: Buffer;
  width: number;
  height: number;
}

/**
 * `imageToTensor` for pixels already in memory: the same tensor as decoding the lossless PNG of the same pixels, without
 * encoding and decoding one. At the target size nothing runs but the normalisation (on this thread); another size is
 * resized by sharp with the same kernel.
 */
export async function rgbToTensor(pixels: RgbPixels, options: TensorOptions, out?: Float32Array, offset = 0): Promise<Float32Array> {
  const [height, width] = checkTensorOptions(options);
  const { rgb, width: w, height: h } = pixels;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1 || !Buffer.isBuffer(rgb) || rgb.length !== 3 * w * h) {
    throw new PictalkError('input.invalid', `Expected ${describe(w)}x${describe(h)} RGB pixels of ${3 * w * h} bytes, got ${Buffer.isBuffer(rgb) ? `${rgb.length} bytes` : describe(rgb)}`);
  }
  const data = w === width && h === height ? rgb
    : await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .resize(width, height, { fit: 'fill', kernel: SHARP_KERNEL[options.kernel ?? 'bilinear'] }).raw().toBuffer();
  return normalise(data, options, out, offset);
}

/** The target [H, W] of valid tensor options, or `config.invalid` naming what is wrong. */
function checkTensorOptions(options: TensorOptions): [number, number] {
  const [height, width] = options.size;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new PictalkError('config.invalid', `Expected the image size to be two positive integers [H, W], got ${describe(JSON.stringify(options.size))}`);
  }
  if (options.mean.length !== 3 || options.std.length !== 3 || options.std.some((s) => !(s > 0))) {
    throw new PictalkError('config.invalid',
      `Expected mean and std of three channels with std > 0, got mean ${JSON.stringify(options.mean)} and std ${JSON.stringify(options.std)}`);
  }
  return [height, width];
}

/** [H, W, 3] bytes at the options' size -> ((pixel / 255) - mean[c]) / std[c] as [3, H, W], into `out` at `offset`. */
function normalise(data: Buffer, options: TensorOptions, out: Float32Array | undefined, offset: number): Float32Array {
  const [height, width] = options.size;
  const plane = width * height;
  const target = out ?? new Float32Array(3 * plane);
  if (target.length < offset + 3 * plane) {
    throw new PictalkError('inference.failed', `Expected room for ${3 * plane} values at offset ${offset}, got a buffer of ${target.length}`);
  }
  for (let c = 0; c < 3; c += 1) {
    const scale = 1 / (255 * options.std[c]!);
    const shift = options.mean[c]! / options.std[c]!;
    const base = offset + c * plane;
    for (let i = 0; i < plane; i += 1) target[base + i] = data[i * 3 + c]! * scale - shift;
  }
  return target;
}

/**
 * CLIP image preprocessing as transformers' CLIPImageProcessor does it (a safety checker's `feature_extractor/`):
 * resize so the shorter side is `shortestEdge` (the longer one int(edge * long / short)), centre crop [H, W] at
 * ((h - H) // 2, (w - W) // 2), multiply by `rescale`, then (x - mean[c]) / std[c].
 */
export interface ClipPreprocessing {
  /** `size.shortest_edge` (or an integer `size`) when `do_resize`; undefined: no resize. */
  shortestEdge?: number;
  /** `crop_size` [H, W] when `do_center_crop`; undefined: no crop. Never larger than the resized image. */
  crop?: readonly [number, number];
  kernel: ResizeKernel;
  /** `rescale_factor` when `do_rescale` (1/255), else 1. */
  rescale: number;
  /** `image_mean` and `image_std` when `do_normalize`, else 0 and 1. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** The [H, W] of `ClipPreprocessing`'s output for a width x height image. */
export function clipTensorSize(width: number, height: number, p: ClipPreprocessing): [number, number] {
  let [h, w] = [height, width];
  if (p.shortestEdge !== undefined) {
    const [short, long] = w <= h ? [w, h] : [h, w];
    const newLong = Math.trunc((p.shortestEdge * long) / short);
    [h, w] = w <= h ? [newLong, p.shortestEdge] : [p.shortestEdge, newLong];
  }
  if (p.crop) {
    if (p.crop[0] > h || p.crop[1] > w) {
      throw new PictalkError('model.invalid', `Expected a centre crop of at most ${w}x${h} after resizing, got ${p.crop[1]}x${p.crop[0]}`);
    }
    [h, w] = [p.crop[0], p.crop[1]];
  }
  return [h, w];
}

/**
 * 8-bit RGB [H, W, 3] -> CLIP input [3, h, w] (`clipTensorSize`), written into `out` at `offset` (a batch [N, 3, h, w]).
 * The resize is sharp's (libvips) with the config's kernel; PIL's bicubic differs from it by a few levels at edges.
 */
export async function rgbToClipTensor(rgb: Buffer, width: number, height: number, p: ClipPreprocessing, out: Float32Array, offset = 0): Promise<void> {
  const [h, w] = clipTensorSize(width, height, p);
  let image = sharp(rgb, { raw: { width, height, channels: 3 } });
  let [rh, rw] = [height, width];
  if (p.shortestEdge !== undefined) {
    [rh, rw] = clipTensorSize(width, height, { ...p, crop: undefined });
    if (rh !== height || rw !== width) image = image.resize(rw, rh, { fit: 'fill', kernel: SHARP_KERNEL[p.kernel] });
  }
  if (p.crop) image = image.extract({ left: Math.floor((rw - w) / 2), top: Math.floor((rh - h) / 2), width: w, height: h });
  const data = await image.raw().toBuffer();
  const plane = w * h;
  if (out.length < offset + 3 * plane) {
    throw new PictalkError('inference.failed', `Expected room for ${3 * plane} values at offset ${offset}, got a buffer of ${out.length}`);
  }
  for (let c = 0; c < 3; c += 1) {
    const scale = p.rescale / p.std[c]!;
    const shift = p.mean[c]! / p.std[c]!;
    const base = offset + c * plane;
    for (let i = 0; i < plane; i += 1) out[base + i] = data[i * 3 + c]! * scale - shift;
  }
}

/** [3, H, W] floats in [-1, 1] (a VAE decoder's output) -> [H, W, 3] bytes, as diffusers does: round(clamp(x/2+0.5)*255). */
export function chwToRgb(chw: Float32Array, width: number, height: number, offset = 0): Buffer {
  const plane = width * height;
  if (chw.length < offset + 3 * plane) {
    throw new PictalkError('inference.failed', `Expected ${3 * plane} values for a ${width}x${height} RGB image, got ${chw.length - offset}`);
  }
  const rgb = Buffer.allocUnsafe(3 * plane);
  for (let c = 0; c < 3; c += 1) {
    const base = offset + c * plane;
    for (let i = 0; i < plane; i += 1) {
      const v = chw[base + i]! * 0.5 + 0.5;
      // Pixel values outside the image range are clipped, as every SD pipeline does; NaN becomes 0.
      rgb[i * 3 + c] = v >= 1 ? 255 : v > 0 ? Math.round(v * 255) : 0;
    }
  }
  return rgb;
}

/** Encode a [3, H, W] float image in [-1, 1] (at `offset` of a batch) as PNG with text metadata. */
export async function encodePng(chw: Float32Array, width: number, height: number, options: EncodeOptions = {}, offset = 0): Promise<Buffer> {
  const upscale = options.upscale ?? 1;
  if (!Number.isInteger(upscale) || upscale < 1 || upscale > 8) {
    throw new PictalkError('input.invalid', `Expected \`upscale\` to be an integer from 1 to 8, got ${describe(upscale)}`);
  }
  const rgb = chwToRgb(chw, width, height, offset);
  let png: Buffer;
  if (upscale > 1 && options.upscaleKernel === 'lanczos') {
    png = await sharp(rgb, { raw: { width, height, channels: 3 } })
      .resize(width * upscale, height * upscale, { kernel: 'lanczos3' })
      .png({ compressionLevel: 6 })
      .toBuffer();
  } else {
    // Small generated images are encoded here rather than through sharp's thread pool: a 64x64 PNG costs about
    // 0.2 ms this way against several ms of libvips overhead, which counts in the text-to-image latency budget.
    const scaled = upscale > 1 ? nearestUpscale(rgb, width, height, upscale) : rgb;
    png = encodeRgbPng(scaled, width * upscale, height * upscale);
  }
  const text: Record<string, string> = { ...(options.text ?? {}) };
  if (options.aiGenerated) {
    text.ai_generated = 'true';
    text.Software = 'pictalk';
    text['XML:com.adobe.xmp'] = AI_XMP;
  }
  return withTextChunks(png, text);
}

/** The IPTC digital source type for generated media, in the XMP packet PNG readers look for. */
const AI_XMP = [
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
  '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"',
  ' Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>',
  '</rdf:RDF></x:xmpmeta>',
].join('');

/** Repeat every pixel `factor` times in x and y. */
function nearestUpscale(rgb: Buffer, width: number, height: number, factor: number): Buffer {
  const outWidth = width * factor;
  const out = Buffer.allocUnsafe(rgb.length * factor * factor);
  for (let y = 0; y < height; y += 1) {
    const row = Buffer.allocUnsafe(outWidth * 3);
    for (let x = 0; x < width; x += 1) {
      const from = (y * width + x) * 3;
      for (let k = 0; k < factor; k += 1) rgb.copy(row, (x * factor + k) * 3, from, from + 3);
    }
    for (let k = 0; k < factor; k += 1) row.copy(out, (y * factor + k) * outWidth * 3);
  }
  return out;
}

/** 8-bit RGB PNG: IHDR, one zlib IDAT of rows with the Sub filter (type 1), IEND. Deterministic bytes. */
export function encodeRgbPng(rgb: Buffer, width: number, height: number): Buffer {
  const stride = width * 3;
  const filtered = Buffer.allocUnsafe((stride + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const at = y * (stride + 1);
    const row = y * stride;
    filtered[at] = 1;
    for (let i = 0; i < stride; i += 1) filtered[at + 1 + i] = (rgb[row + i]! - (i >= 3 ? rgb[row + i - 3]! : 0)) & 0xff;
  }
  return rgbPngFile(width, height, filtered, 6);
}

/** An 8-bit RGB PNG file of filtered scanlines (each row's filter byte, then its bytes), deflated at `level`. */
function rgbPngFile(width: number, height: number, filtered: Buffer, level: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);                  // bit depth 8, colour type 2 (RGB), deflate, adaptive filters, no interlace
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(filtered, { level })), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * A [3, H, W] float image in [-1, 1] enlarged `scale` times by repeating pixels, as a PNG, cheaply (a live preview:
 * about a twentieth of `encodePng`'s time at 16x16 x 8): each source row is written once with the Sub filter, the
 * rows that repeat it with the Up filter, all zeros, and deflate's fastest level.
 */
export function encodeEnlargedPng(chw: Float32Array, width: number, height: number, scale: number, offset = 0): Buffer {
  const rgb = chwToRgb(chw, width, height, offset);
  const outWidth = width * scale;
  const stride = outWidth * 3 + 1;
  const filtered = Buffer.alloc(stride * height * scale);          // zeros: Up-filtered repeats need nothing more
  for (let y = 0; y < height; y += 1) {
    const at = y * scale * stride;
    filtered[at] = 1;                                              // Sub: each byte minus the one a pixel before
    for (let x = 0; x < outWidth; x += 1) {
      const source = (y * width + Math.floor(x / scale)) * 3;
      const before = x === 0 ? -1 : (y * width + Math.floor((x - 1) / scale)) * 3;   // the pixel to the left, if any
      for (let c = 0; c < 3; c += 1) filtered[at + 1 + x * 3 + c] = (rgb[source + c]! - (before < 0 ? 0 : rgb[before + c]!)) & 0xff;
    }
    for (let k = 1; k < scale; k += 1) filtered[at + k * stride] = 2;   // Up: the same as the row above
  }
  return rgbPngFile(outWidth, height * scale, filtered, 1);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// ---- PNG chunks (https://www.w3.org/TR/png-3/#11textinfo) ----

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const isLatin1 = (text: string): boolean => /^[\x20-\x7e\xa0-\xff\n]*$/.test(text);

function textChunk(key: string, value: string): Buffer {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(key) || key.startsWith(' ') || key.endsWith(' ')) {
    throw new PictalkError('inference.failed', `Expected a PNG text keyword of 1-79 Latin-1 characters, got ${describe(key)}`);
  }
  if (isLatin1(value)) return chunk('tEXt', Buffer.concat([Buffer.from(key, 'latin1'), Buffer.of(0), Buffer.from(value, 'latin1')]));
  // iTXt: keyword \0, compression flag 0, method 0, language tag \0, translated keyword \0, UTF-8 text.
  return chunk('iTXt', Buffer.concat([Buffer.from(key, 'latin1'), Buffer.of(0, 0, 0, 0, 0), Buffer.from(value, 'utf8')]));
}

/** Insert text chunks right after IHDR (signature 8 bytes + IHDR 25 bytes). */
export function withTextChunks(png: Buffer, text: Record<string, string>): Buffer {
  const entries = Object.entries(text);
  if (entries.length === 0) return png;
  const headerEnd = 8 + 12 + png.readUInt32BE(8);
  return Buffer.concat([png.subarray(0, headerEnd), ...entries.map(([k, v]) => textChunk(k, v)), png.subarray(headerEnd)]);
}

/** Read tEXt and (uncompressed) iTXt chunks back; a reader for tests and for `pictalk` to show settings. */
export function readPngText(png: Buffer): Record<string, string> {
  if (sniffFormat(png) !== 'png') throw new PictalkError('input.unsupported', 'Expected a PNG file, got bytes of another kind');
  const text: Record<string, string> = {};
  let at = 8;
  while (at + 12 <= png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'tEXt') {
      const nul = data.indexOf(0);
      text[data.toString('latin1', 0, nul)] = data.toString('latin1', nul + 1);
    } else if (type === 'iTXt') {
      const nul = data.indexOf(0);
      const compressed = data[nul + 1] === 1;
      const langEnd = data.indexOf(0, nul + 3);
      const transEnd = data.indexOf(0, langEnd + 1);
      if (!compressed) text[data.toString('latin1', 0, nul)] = data.toString('utf8', transEnd + 1);
    } else if (type === 'IEND') {
      break;
    }
    at += 12 + length;
  }
  return text;
}
