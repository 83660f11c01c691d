/**
 * Drawing a scene at random and laying it out on the canvas: pure, seeded, no pixels.
 * The renderer turns the resulting `DrawSpec` into a PNG.
 */
import { HELD_OUT, heldOutIn, type HeldOut } from './compositional.js';
import { pick, randInt, type Rng } from './random.js';
import { sceneKey, type Box, type Scene, type SceneObject } from './scene.js';
import {
  CANVAS_SIZE, COLOR_NAMES, COLORS, EMOJI_NAMES, isShape, SHAPE_NAMES, SIZE_NAMES, SIZE_PIXELS, type Rgb,
} from './vocabulary.js';

export type Background =
  | { kind: 'plain'; color: Rgb }
  | { kind: 'gradient'; from: Rgb; to: Rgb; direction: 'horizontal' | 'vertical' | 'diagonal' }
  | { kind: 'noise'; color: Rgb; amplitude: number; seed: number };

export interface PlacedObject {
  object: SceneObject;
  /** The square cell the object is drawn into: `size` px on a side. */
  cell: Box;
  /** The fill colour after jitter; null for emoji. */
  rgb: Rgb | null;
}

export interface DrawSpec {
  scene: Scene;
  background: Background;
  objects: PlacedObject[];   // in scene order
}

const MAX_BIG_OF_THREE = 2;  // three big objects (3 x 23 px) would not fit on a 64 px axis

function randomObject(rng: Rng): SceneObject {
  const size = pick(rng, SIZE_NAMES);
  if (rng() < 0.5) return { name: pick(rng, SHAPE_NAMES), color: pick(rng, COLOR_NAMES), size };
  return { name: pick(rng, EMOJI_NAMES), color: null, size };
}

function objectCount(rng: Rng): 1 | 2 | 3 {
  const u = rng();
  return u < 0.2 ? 1 : u < 0.6 ? 2 : 3;
}

/** A scene the canvas can hold: at most two big objects of three, no two objects alike. */
function drawable(scene: Scene): boolean {
  const keys = new Set(scene.objects.map((o) => sceneKey({ axis: null, objects: [o] })));
  if (keys.size !== scene.objects.length) return false;
  return scene.objects.length < 3 || scene.objects.filter((o) => o.size === 'big').length <= MAX_BIG_OF_THREE;
}

/** A random scene with no held-out combination (train, val and test). */
export function sampleScene(rng: Rng, heldOut: readonly HeldOut[] = HELD_OUT): Scene {
  for (;;) {
    const n = objectCount(rng);
    const objects = Array.from({ length: n }, () => randomObject(rng));
    const scene: Scene = { axis: n === 1 ? null : pick(rng, ['horizontal', 'vertical'] as const), objects };
    if (drawable(scene) && heldOutIn(scene, heldOut).length === 0) return scene;
  }
}

/** A random scene that contains `combo` (the compositional split); the other objects are free. */
export function sampleSceneWith(rng: Rng, combo: HeldOut): Scene {
  for (;;) {
    if (combo.kind === 'color-shape') {
      const n = objectCount(rng);
      const objects = Array.from({ length: n }, () => randomObject(rng));
      objects[randInt(rng, 0, n - 1)] = { name: combo.shape, color: combo.color, size: pick(rng, SIZE_NAMES) };
      const scene: Scene = { axis: n === 1 ? null : pick(rng, ['horizontal', 'vertical'] as const), objects };
      if (drawable(scene)) return scene;
    } else {
      const n = rng() < 0.5 ? 2 : 3;
      const objects = Array.from({ length: n }, () => randomObject(rng));
      const [i, j] = n === 2 ? [0, 1] : pick(rng, [[0, 1], [0, 2], [1, 2]] as const);
      const named = (name: string): SceneObject =>
        ({ name, color: isShape(name) ? pick(rng, COLOR_NAMES) : null, size: pick(rng, SIZE_NAMES) });
      objects[i] = named(combo.subject);
      objects[j] = named(combo.object);
      const scene: Scene = { axis: combo.relation === 'left of' ? 'horizontal' : 'vertical', objects };
      if (drawable(scene)) return scene;
    }
  }
}

const jitterChannel = (rng: Rng, value: number, amount: number): number =>
  Math.max(0, Math.min(255, value + randInt(rng, -amount, amount)));
const jitter = (rng: Rng, c: Rgb, amount: number): Rgb =>
  ({ r: jitterChannel(rng, c.r, amount), g: jitterChannel(rng, c.g, amount), b: jitterChannel(rng, c.b, amount) });
const lightTint = (rng: Rng): Rgb => ({ r: randInt(rng, 218, 255), g: randInt(rng, 218, 255), b: randInt(rng, 218, 255) });

function sampleBackground(rng: Rng): Background {
  const u = rng();
  if (u < 0.4) return { kind: 'plain', color: lightTint(rng) };
  if (u < 0.75) {
    return { kind: 'gradient', from: lightTint(rng), to: lightTint(rng), direction: pick(rng, ['horizontal', 'vertical', 'diagonal'] as const) };
  }
  return { kind: 'noise', color: lightTint(rng), amplitude: randInt(rng, 4, 10), seed: Math.floor(rng() * 2 ** 32) };
}

/** Split `slack` pixels at random into `parts` non-negative integers. */
function splitSlack(rng: Rng, slack: number, parts: number): number[] {
  const weights = Array.from({ length: parts }, () => rng() + 1e-6);
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => Math.floor((w / total) * slack));
}

/**
 * Place the scene's objects: cells in order along the axis, never overlapping (at least one pixel
 * apart), centred near the canvas middle on the other axis (within ±6 px) so the relation reads one way.
 */
export function layoutScene(scene: Scene, rng: Rng): DrawSpec {
  const background = sampleBackground(rng);
  const sizes = scene.objects.map((o) => randInt(rng, SIZE_PIXELS[o.size].min, SIZE_PIXELS[o.size].max));
  const rgbs = scene.objects.map((o) => (o.color === null ? null : jitter(rng, COLORS[o.color] as Rgb, 12)));
  const n = scene.objects.length;
  const margin = 1;
  let along: number[];
  let across: number[];
  if (n === 1) {
    const size = sizes[0] as number;
    along = [randInt(rng, 4, CANVAS_SIZE - 4 - size)];
    across = [randInt(rng, 4, CANVAS_SIZE - 4 - size)];
  } else {
    const free = CANVAS_SIZE - 2 * margin - sizes.reduce((a, b) => a + b, 0);
    const minGap = free >= 4 * (n - 1) ? 3 : 1;
    if (free < minGap * (n - 1)) throw new RangeError(`Objects of ${sizes.join('+')} px do not fit on a ${CANVAS_SIZE} px axis`);
    const slack = splitSlack(rng, free - minGap * (n - 1), n + 1);
    along = [];
    let cursor = margin + (slack[0] as number);
    for (let i = 0; i < n; i += 1) {
      along.push(cursor);
      cursor += (sizes[i] as number) + minGap + (slack[i + 1] as number);
    }
    across = sizes.map((size) => {
      const centre = CANVAS_SIZE / 2 + randInt(rng, -6, 6);
      return Math.max(margin, Math.min(CANVAS_SIZE - margin - size, Math.round(centre - size / 2)));
    });
  }
  const objects = scene.objects.map((object, i): PlacedObject => {
    const size = sizes[i] as number;
    const a = along[i] as number;
    const c = across[i] as number;
    const cell = scene.axis === 'vertical' ? { x: c, y: a, width: size, height: size } : { x: a, y: c, width: size, height: size };
    return { object, cell, rgb: rgbs[i] as Rgb | null };
  });
  return { scene, background, objects };
}
