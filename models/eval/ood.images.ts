/**
 * Pictures unlike the drawn world, for measuring the captioner's out-of-domain check (domain.eval.ts):
 *
 * - photographs: random crops and rescales of the real photographs that Debian's `python3-skimage` ships (scikit-image's
 *   sample data, public domain or CC0, see models/CREDITS.md), some re-encoded as JPEG as phones and chats do;
 * - screenshots: synthesized application windows (title bar, text lines, buttons, fields, a list), drawn from SVG;
 * - drawings: black line drawings on paper (strokes, outlines, scribbles, a house, a face), drawn from SVG;
 * - and world pictures as people pass them on (`asShared`: JPEG, rescaled), which the check must still pass.
 *
 * Every picture depends only on (seed, set, index), like the world's images. The eval's only module that imports sharp.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { hashSeed, mulberry32, pick, randInt, type Rng } from '../world/random.js';

/** Where Debian's python3-skimage keeps scikit-image's sample images. */
export const SKIMAGE_DATA_DIR = '/usr/lib/python3/dist-packages/skimage/data';

/**
 * The photographs among the sample images (the rest are synthetic test patterns, drawings or scanned text):
 * people, an animal, objects, textures, astronomy, microscopy, a street sign.
 */
export const SKIMAGE_PHOTOS: readonly string[] = [
  'astronaut.png', 'brick.png', 'camera.png', 'cell.png', 'chelsea.png', 'clock_motion.png', 'coffee.png', 'coins.png',
  'grass.png', 'gravel.png', 'hubble_deep_field.jpg', 'ihc.png', 'moon.png', 'motorcycle_left.png', 'motorcycle_right.png',
  'retina.jpg', 'rocket.jpg', 'text.png',
];

export interface OodImage {
  set: 'photo' | 'screenshot' | 'drawing';
  source: string;        // the photograph's file, or the kind of synthesized picture
  index: number;
  bytes: Buffer;         // PNG or JPEG, as a user would share it
}

/** Which of the sample photographs are in `dir` (none when python3-skimage is not installed). */
export function availablePhotos(dir = SKIMAGE_DATA_DIR): string[] {
  return SKIMAGE_PHOTOS.filter((name) => existsSync(join(dir, name)));
}

/** `perPhoto` random crops of each photograph, rescaled so the longer side is 64 to 512 pixels. */
export async function photoCrops(dir: string, seed: number, perPhoto: number, names = availablePhotos(dir)): Promise<OodImage[]> {
  const images: OodImage[] = [];
  for (const name of names) {
    // decoded once, as RGB; a sample photograph can be grey or carry alpha
    const { data, info } = await sharp(readFileSync(join(dir, name)), { failOn: 'none' }).removeAlpha().toColourspace('srgb')
      .raw().toBuffer({ resolveWithObject: true });
    const raw = { width: info.width, height: info.height, channels: info.channels };
    for (let i = 0; i < perPhoto; i += 1) {
      const rng = mulberry32(hashSeed(seed, 'photo', name, i));
      const short = Math.min(raw.width, raw.height);
      const side = Math.max(32, Math.round(short * (0.25 + 0.75 * rng())));
      const aspect = 0.75 + 0.6 * rng();
      const width = Math.min(raw.width, Math.round(side * Math.sqrt(aspect)));
      const height = Math.min(raw.height, Math.round(side / Math.sqrt(aspect)));
      const left = randInt(rng, 0, raw.width - width);
      const top = randInt(rng, 0, raw.height - height);
      const longer = randInt(rng, 64, 512);
      const scale = longer / Math.max(width, height);
      let image = sharp(data, { raw }).extract({ left, top, width, height })
        .resize(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
      if (rng() < 0.5) image = image.flop();
      const bytes = rng() < 0.5 ? await image.jpeg({ quality: randInt(rng, 60, 95) }).toBuffer() : await image.png().toBuffer();
      images.push({ set: 'photo', source: name, index: i, bytes });
    }
  }
  return images;
}

/**
 * A world picture as people pass it on (the domain check must still pass it): re-encoded as JPEG (quality 60 to 95),
 * half of them first scaled up to 128 to 512 pixels, as a phone or a chat client does. Depends on (seed, index) only.
 */
export async function asShared(png: Buffer, seed: number, index: number): Promise<Buffer> {
  const rng = mulberry32(hashSeed(seed, 'shared', index));
  const image = rng() < 0.5 ? sharp(png).resize(randInt(rng, 128, 512), undefined, { kernel: 'lanczos3' }) : sharp(png);
  return image.jpeg({ quality: randInt(rng, 60, 95) }).toBuffer();
}

// ---- synthesized pictures ------------------------------------------------------------------------------------------

const hex = (rng: Rng, lo: number, hi: number): string =>
  `#${[0, 1, 2].map(() => randInt(rng, lo, hi).toString(16).padStart(2, '0')).join('')}`;
const WORDS = ['settings', 'open', 'file', 'save', 'cancel', 'search', 'inbox', 'reply', 'project', 'report', 'today',
  'meeting', 'update', 'share', 'profile', 'account', 'message', 'send', 'edit', 'view', 'help', 'channel', 'notes'];
const words = (rng: Rng, n: number): string => Array.from({ length: n }, () => pick(rng, WORDS)).join(' ');
const escapeXml = (text: string): string => text.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);

/** An application window: title bar, sidebar list, text lines, a field and buttons, in a light or dark theme. */
export function screenshotSvg(seed: number, index: number): { svg: string; kind: string } {
  const rng = mulberry32(hashSeed(seed, 'screenshot', index));
  const width = randInt(rng, 240, 800);
  const height = Math.round(width * (0.55 + 0.4 * rng()));
  const dark = rng() < 0.4;
  const background = dark ? hex(rng, 20, 50) : hex(rng, 235, 255);
  const ink = dark ? hex(rng, 200, 240) : hex(rng, 20, 70);
  const accent = hex(rng, 30, 220);
  const font = Math.max(9, Math.round(width / randInt(rng, 28, 48)));
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="${background}"/>`];
  const bar = Math.round(font * 2.2);
  parts.push(`<rect width="${width}" height="${bar}" fill="${dark ? hex(rng, 40, 70) : hex(rng, 210, 235)}"/>`);
  for (let d = 0; d < 3; d += 1) parts.push(`<circle cx="${bar * (0.5 + 0.6 * d)}" cy="${bar / 2}" r="${bar / 6}" fill="${['#ff5f57', '#febc2e', '#28c840'][d]}"/>`);
  parts.push(`<text x="${width / 2}" y="${bar * 0.68}" font-family="sans-serif" font-size="${font}" fill="${ink}" text-anchor="middle">${escapeXml(words(rng, 2))}</text>`);
  const sidebar = rng() < 0.6 ? Math.round(width * (0.18 + 0.12 * rng())) : 0;
  if (sidebar > 0) {
    parts.push(`<rect y="${bar}" width="${sidebar}" height="${height - bar}" fill="${dark ? hex(rng, 30, 60) : hex(rng, 225, 245)}"/>`);
    for (let y = bar + font * 1.8, row = 0; y < height - font; y += font * 1.9, row += 1) {
      if (row === 1) parts.push(`<rect x="4" y="${y - font * 1.2}" width="${sidebar - 8}" height="${font * 1.6}" rx="3" fill="${accent}" opacity="0.35"/>`);
      parts.push(`<text x="${font * 0.8}" y="${y}" font-family="sans-serif" font-size="${font * 0.9}" fill="${ink}">${escapeXml(words(rng, 1))}</text>`);
    }
  }
  const x0 = sidebar + font;
  let y = bar + font * 2;
  const kind = pick(rng, ['document', 'chat', 'form']);
  while (y < height - font * 3) {
    if (kind === 'form' && rng() < 0.35) {
      parts.push(`<rect x="${x0}" y="${y - font}" width="${(width - x0) * 0.7}" height="${font * 1.8}" rx="4" fill="none" stroke="${ink}" stroke-opacity="0.5"/>`);
      y += font * 1.4;
    } else if (kind === 'chat' && rng() < 0.5) {
      parts.push(`<circle cx="${x0 + font}" cy="${y - font * 0.3}" r="${font * 0.9}" fill="${hex(rng, 60, 230)}"/>`);
      parts.push(`<text x="${x0 + font * 2.6}" y="${y}" font-family="sans-serif" font-size="${font}" fill="${ink}">${escapeXml(words(rng, randInt(rng, 2, 7)))}</text>`);
    } else {
      parts.push(`<text x="${x0}" y="${y}" font-family="sans-serif" font-size="${font}" fill="${ink}">${escapeXml(words(rng, randInt(rng, 3, 9)))}</text>`);
    }
    y += font * 1.7;
  }
  const buttons = randInt(rng, 1, 3);
  for (let b = 0; b < buttons; b += 1) {
    const bw = font * 6;
    const bx = width - (b + 1) * (bw + font);
    parts.push(`<rect x="${bx}" y="${height - font * 2.6}" width="${bw}" height="${font * 1.9}" rx="5" fill="${b === 0 ? accent : 'none'}" stroke="${accent}"/>`);
    parts.push(`<text x="${bx + bw / 2}" y="${height - font * 1.3}" font-family="sans-serif" font-size="${font}" fill="${b === 0 ? '#ffffff' : ink}" text-anchor="middle">${escapeXml(pick(rng, ['OK', 'Save', 'Send', 'Cancel', 'Next']))}</text>`);
  }
  return { svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`, kind: `screenshot:${kind}` };
}

/** A line drawing on paper: black or blue strokes, no fills (a house, a face, a plant, scribbles, a diagram). */
export function drawingSvg(seed: number, index: number): { svg: string; kind: string } {
  const rng = mulberry32(hashSeed(seed, 'drawing', index));
  const size = randInt(rng, 128, 640);
  const paper = pick(rng, ['#ffffff', '#fbf8ef', '#f4f1e8', '#fffdf5']);
  const ink = pick(rng, ['#111111', '#222244', '#1a3a8a', '#333333']);
  const w = Math.max(1, size / randInt(rng, 60, 150));
  const s = (v: number): string => (v * size).toFixed(1);
  const jitter = (v: number): number => v + (rng() - 0.5) * 0.03;
  const stroke = `fill="none" stroke="${ink}" stroke-width="${w.toFixed(1)}" stroke-linecap="round" stroke-linejoin="round"`;
  const parts: string[] = [`<rect width="${size}" height="${size}" fill="${paper}"/>`];
  const kind = pick(rng, ['house', 'face', 'plant', 'scribble', 'diagram']);
  const line = (points: Array<[number, number]>): string => `<polyline points="${points.map(([x, y]) => `${s(jitter(x))},${s(jitter(y))}`).join(' ')}" ${stroke}/>`;
  if (kind === 'house') {
    parts.push(line([[0.2, 0.85], [0.2, 0.45], [0.5, 0.2], [0.8, 0.45], [0.8, 0.85], [0.2, 0.85]]));
    parts.push(line([[0.42, 0.85], [0.42, 0.62], [0.56, 0.62], [0.56, 0.85]]));
    parts.push(line([[0.27, 0.52], [0.36, 0.52], [0.36, 0.6], [0.27, 0.6], [0.27, 0.52]]));
    parts.push(line([[0.05, 0.86], [0.95, 0.87]]));
  } else if (kind === 'face') {
    parts.push(`<ellipse cx="${s(0.5)}" cy="${s(0.5)}" rx="${s(0.3)}" ry="${s(0.36)}" ${stroke}/>`);
    parts.push(`<circle cx="${s(0.4)}" cy="${s(0.42)}" r="${s(0.03)}" ${stroke}/>`, `<circle cx="${s(0.6)}" cy="${s(0.42)}" r="${s(0.03)}" ${stroke}/>`);
    parts.push(`<path d="M${s(0.38)},${s(0.65)} Q${s(0.5)},${s(0.75)} ${s(0.62)},${s(0.65)}" ${stroke}/>`);
    parts.push(line([[0.5, 0.47], [0.47, 0.57], [0.52, 0.57]]));
  } else if (kind === 'plant') {
    parts.push(line([[0.35, 0.9], [0.65, 0.9], [0.6, 0.7], [0.4, 0.7], [0.35, 0.9]]));
    for (let leaf = 0; leaf < randInt(rng, 3, 7); leaf += 1) {
      const tx = 0.2 + 0.6 * rng();
      const ty = 0.15 + 0.4 * rng();
      parts.push(`<path d="M${s(0.5)},${s(0.7)} Q${s((0.5 + tx) / 2 + 0.1)},${s((0.7 + ty) / 2)} ${s(tx)},${s(ty)}" ${stroke}/>`);
    }
  } else if (kind === 'scribble') {
    let d = `M${s(rng())},${s(rng())}`;
    for (let k = 0; k < randInt(rng, 6, 20); k += 1) d += ` Q${s(rng())},${s(rng())} ${s(rng())},${s(rng())}`;
    parts.push(`<path d="${d}" ${stroke}/>`);
  } else {
    const boxes: Array<[number, number]> = Array.from({ length: randInt(rng, 3, 5) }, () => [0.1 + 0.6 * rng(), 0.1 + 0.7 * rng()]);
    for (const [x, y] of boxes) parts.push(`<rect x="${s(x)}" y="${s(y)}" width="${s(0.2)}" height="${s(0.1)}" rx="${s(0.02)}" ${stroke}/>`);
    for (let k = 1; k < boxes.length; k += 1) parts.push(line([[boxes[k - 1]![0] + 0.1, boxes[k - 1]![1] + 0.1], [boxes[k]![0] + 0.1, boxes[k]![1]]]));
  }
  return { svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">${parts.join('')}</svg>`, kind: `drawing:${kind}` };
}

/** `count` synthesized pictures of one set, rasterized to PNG. */
export async function synthesized(set: 'screenshot' | 'drawing', seed: number, count: number): Promise<OodImage[]> {
  const images: OodImage[] = [];
  for (let index = 0; index < count; index += 1) {
    const { svg, kind } = set === 'screenshot' ? screenshotSvg(seed, index) : drawingSvg(seed, index);
    images.push({ set, source: kind, index, bytes: await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).png().toBuffer() });
  }
  return images;
}
