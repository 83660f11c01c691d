/**
 * What the world can draw: shapes in named colours, emoji objects, two sizes.
 * The names here are the words of the captions and of the canonical scene.
 */

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** Named colours, far apart in RGB so a small jitter never makes one look like another. */
export const COLORS: Readonly<Record<string, Rgb>> = {
  red: { r: 220, g: 35, b: 35 },
  green: { r: 35, g: 160, b: 55 },
  blue: { r: 35, g: 85, b: 225 },
  yellow: { r: 240, g: 200, b: 10 },
  purple: { r: 135, g: 50, b: 190 },
  orange: { r: 250, g: 125, b: 15 },
};
export const COLOR_NAMES: readonly string[] = Object.keys(COLORS);

/** Shapes are drawn from SVG and always carry a colour. */
export const SHAPE_NAMES: readonly string[] = ['circle', 'square', 'triangle', 'star', 'heart', 'diamond'];

/**
 * Emoji objects: caption word -> image file under `img/google/64/` of `emoji-datasource-google`
 * (Noto Emoji artwork, Apache-2.0). Emoji carry no colour attribute. Each word is one token and
 * none is also a colour word ("orange" the fruit is left out for that reason).
 */
export const EMOJI_FILES: Readonly<Record<string, string>> = {
  cat: '1f431.png',      // :cat: (face)
  dog: '1f436.png',      // :dog: (face)
  apple: '1f34e.png',    // :apple:
  car: '1f697.png',      // :car:
  tree: '1f333.png',     // :deciduous_tree:
  house: '1f3e0.png',    // :house:
  fish: '1f41f.png',     // :fish:
  flower: '1f337.png',   // :tulip:
  banana: '1f34c.png',   // :banana:
  bird: '1f426.png',     // :bird:
  ball: '26bd.png',      // :soccer:
  rocket: '1f680.png',   // :rocket:
};
export const EMOJI_NAMES: readonly string[] = Object.keys(EMOJI_FILES);

export const OBJECT_NAMES: readonly string[] = [...SHAPE_NAMES, ...EMOJI_NAMES];

export const isShape = (name: string): boolean => SHAPE_NAMES.includes(name);
export const isEmoji = (name: string): boolean => Object.prototype.hasOwnProperty.call(EMOJI_FILES, name);

export type SizeName = 'small' | 'big';
export const SIZE_NAMES: readonly SizeName[] = ['small', 'big'];

/**
 * Pixel size of an object's longer side on the 64x64 canvas, before jitter. The ranges never meet
 * (small at most 14, big at least 21), and three objects of which at most two are big still fit on one axis.
 */
export const SIZE_PIXELS: Readonly<Record<SizeName, { min: number; max: number }>> = {
  small: { min: 12, max: 14 },
  big: { min: 21, max: 23 },
};

export const CANVAS_SIZE = 64;
