/**
 * Turns a `DrawSpec` into a 64x64 RGB PNG. sharp rasterizes each shape's SVG (librsvg) and decodes,
 * trims and resizes each Noto emoji once per pixel size, at start-up; an image is then the background
 * with those cached rasters alpha-blended on top in plain JS, and one sharp call encodes the PNG.
 * Blending cached rasters instead of compositing SVG per image is what makes this ~4x faster (librsvg
 * and a second pipeline cost ~1.5 ms an image). The only module of the world that imports sharp.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';
import { backgroundPixels } from './background.js';
import type { DrawSpec } from './layout.js';
import type { Box, DrawnObject, DrawnScene } from './scene.js';
import { shapeBox, shapeSvg } from './shapes.svg.js';
import { CANVAS_SIZE, EMOJI_FILES, SHAPE_NAMES, SIZE_PIXELS, type Rgb } from './vocabulary.js';

export interface RenderedImage {
  png: Buffer;
  scene: DrawnScene;
}

/** Coverage of a shape's fill and of its outline, 0..1, [size, size] row-major. */
interface ShapeMask {
  fill: Float32Array;
  stroke: Float32Array;
}

/** Emoji artwork, RGBA [height, width, 4], fitted inside a size x size cell. */
interface EmojiRaster {
  rgba: Buffer;
  width: number;
  height: number;
}

const WHITE: Rgb = { r: 255, g: 255, b: 255 };

/** Folder of the 64 px Noto images inside `emoji-datasource-google`. */
export function emojiImageDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('emoji-datasource-google/package.json')), 'img', 'google', '64');
}

/** Every pixel size a layout can ask for. */
function allSizes(): number[] {
  const sizes: number[] = [];
  for (const { min, max } of Object.values(SIZE_PIXELS)) for (let s = min; s <= max; s += 1) sizes.push(s);
  return sizes;
}

async function alphaOf(svg: string, size: number): Promise<Float32Array> {
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) throw new Error(`SVG rendered at ${info.width}x${info.height}, expected ${size}x${size}`);
  const alpha = new Float32Array(size * size);
  for (let i = 0; i < alpha.length; i += 1) alpha[i] = (data[i * info.channels + 3] as number) / 255;
  return alpha;
}

/** The same shape twice: painted fill only, and outline only (`shapeSvg` with one paint made transparent). */
async function shapeMask(name: string, size: number): Promise<ShapeMask> {
  const svg = shapeSvg(name, size, WHITE);
  const [fill, stroke] = await Promise.all([
    alphaOf(svg.replace(/stroke="[^"]*"/, 'stroke="none"'), size),
    alphaOf(svg.replace(/fill="[^"]*"/, 'fill="none"'), size),
  ]);
  return { fill, stroke };
}

/** Blend `color` with coverage `alpha` ([h, w]) into the RGB canvas at (left, top). */
function blendMask(canvas: Buffer, alpha: Float32Array, w: number, h: number, left: number, top: number, color: Rgb): void {
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const a = alpha[y * w + x] as number;
      if (a === 0) continue;
      const i = ((top + y) * CANVAS_SIZE + left + x) * 3;
      canvas[i] = Math.round((canvas[i] as number) * (1 - a) + color.r * a);
      canvas[i + 1] = Math.round((canvas[i + 1] as number) * (1 - a) + color.g * a);
      canvas[i + 2] = Math.round((canvas[i + 2] as number) * (1 - a) + color.b * a);
    }
  }
}

function blendRgba(canvas: Buffer, raster: EmojiRaster, left: number, top: number): void {
  const { rgba, width, height } = raster;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const j = (y * width + x) * 4;
      const a = (rgba[j + 3] as number) / 255;
      if (a === 0) continue;
      const i = ((top + y) * CANVAS_SIZE + left + x) * 3;
      for (let c = 0; c < 3; c += 1) canvas[i + c] = Math.round((canvas[i + c] as number) * (1 - a) + (rgba[j + c] as number) * a);
    }
  }
}

const darker = (c: Rgb): Rgb => ({ r: c.r * 0.6, g: c.g * 0.6, b: c.b * 0.6 });

export class WorldRenderer {
  private constructor(
    private readonly shapes: ReadonlyMap<string, ShapeMask>,
    private readonly emoji: ReadonlyMap<string, EmojiRaster>,
  ) {}

  /** Rasterizes every shape and emoji at every size the layout uses (a few hundred small images, ~0.5 s). */
  static async create(): Promise<WorldRenderer> {
    const sizes = allSizes();
    const shapes = new Map<string, ShapeMask>();
    const emoji = new Map<string, EmojiRaster>();
    const dir = emojiImageDir();
    const jobs: Array<Promise<void>> = [];
    for (const name of SHAPE_NAMES) {
      for (const size of sizes) jobs.push(shapeMask(name, size).then((mask) => { shapes.set(`${name}@${size}`, mask); }));
    }
    for (const [name, file] of Object.entries(EMOJI_FILES)) {
      // Trim the transparent margin first, so `size` is the artwork's longer side, as for shapes.
      jobs.push(sharp(path.join(dir, file)).ensureAlpha().trim().png().toBuffer().then(async (trimmed) => {
        await Promise.all(sizes.map(async (size) => {
          const { data, info } = await sharp(trimmed).resize({ width: size, height: size, fit: 'inside', kernel: 'lanczos3' })
            .ensureAlpha().raw().toBuffer({ resolveWithObject: true });
          emoji.set(`${name}@${size}`, { rgba: data, width: info.width, height: info.height });
        }));
      }));
    }
    await Promise.all(jobs);
    return new WorldRenderer(shapes, emoji);
  }

  /** The image's raw RGB pixels, [64, 64, 3], and the drawn scene with each object's box. */
  draw(spec: DrawSpec): { pixels: Buffer; scene: DrawnScene } {
    const canvas = backgroundPixels(spec.background);
    const objects: DrawnObject[] = [];
    for (const { object, cell, rgb } of spec.objects) {
      const key = `${object.name}@${cell.width}`;
      let box: Box;
      const mask = this.shapes.get(key);
      if (mask !== undefined) {
        if (rgb === null) throw new Error(`Shape ${object.name} has no colour`);
        blendMask(canvas, mask.fill, cell.width, cell.height, cell.x, cell.y, rgb);
        blendMask(canvas, mask.stroke, cell.width, cell.height, cell.x, cell.y, darker(rgb));
        const { dx, width } = shapeBox(object.name, cell.width);
        box = { x: cell.x + dx, y: cell.y, width, height: cell.height };
      } else {
        const raster = this.emoji.get(key);
        if (raster === undefined) throw new RangeError(`No raster for ${JSON.stringify(object.name)} at ${cell.width} px`);
        // Centre the artwork in its cell; its box is what it covers.
        const left = cell.x + Math.floor((cell.width - raster.width) / 2);
        const top = cell.y + Math.floor((cell.height - raster.height) / 2);
        blendRgba(canvas, raster, left, top);
        box = { x: left, y: top, width: raster.width, height: raster.height };
      }
      objects.push({ ...object, box });
    }
    return { pixels: canvas, scene: { axis: spec.scene.axis, objects } };
  }

  async render(spec: DrawSpec): Promise<RenderedImage> {
    const { pixels, scene } = this.draw(spec);
    const png = await sharp(pixels, { raw: { width: CANVAS_SIZE, height: CANVAS_SIZE, channels: 3 } })
      .png({ compressionLevel: 6 }).toBuffer();
    return { png, scene };
  }
}
