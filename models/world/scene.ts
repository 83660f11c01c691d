/**
 * The canonical scene: what captions are compared on. Two captions mean the same thing exactly when
 * they parse to equal scenes ("a cat left of a dog" and "a dog right of a cat" are one scene).
 */
import { COLOR_NAMES, isEmoji, isShape, SIZE_NAMES } from './vocabulary.js';

export interface SceneObject {
  name: string;              // a shape ("circle") or an emoji object ("cat")
  color: string | null;      // a colour name for shapes; null for emoji
  size: 'small' | 'big';
}

export interface Scene {
  /** The axis the objects lie along; null for a single object. */
  axis: 'horizontal' | 'vertical' | null;
  /** Ordered left -> right (horizontal) or top -> bottom (vertical). */
  objects: SceneObject[];
}

/** A pixel rectangle on the canvas. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A scene as drawn, with each object's bounding box (for the recognizer). */
export interface DrawnObject extends SceneObject {
  box: Box;
}
export interface DrawnScene {
  axis: Scene['axis'];
  objects: DrawnObject[];
}

const objectKey = (o: SceneObject): string => `${o.size} ${o.color ?? '-'} ${o.name}`;

/**
 * A stable text key: equal keys mean equal scenes. A one-object scene has no axis whatever it says,
 * so `{ axis: 'horizontal', objects: [x] }` and `{ axis: null, objects: [x] }` share a key.
 */
export function sceneKey(scene: Scene): string {
  const axis = scene.objects.length <= 1 ? 'none' : (scene.axis ?? 'none');
  return `${axis}|${scene.objects.map(objectKey).join('|')}`;
}

export function scenesEqual(a: Scene, b: Scene): boolean {
  return sceneKey(a) === sceneKey(b);
}

/** Strip bounding boxes (and any other extra fields) to the canonical scene. */
export function canonicalScene(scene: Scene): Scene {
  return {
    axis: scene.objects.length <= 1 ? null : scene.axis,
    objects: scene.objects.map((o) => ({ name: o.name, color: o.color, size: o.size })),
  };
}

/** Why a scene is not one the world can draw, or null when it is. */
export function sceneProblem(scene: Scene): string | null {
  const n = scene.objects.length;
  if (n < 1 || n > 3) return `expected one to three objects, got ${n}`;
  if (n === 1 && scene.axis !== null) return 'a single object has no axis';
  if (n > 1 && scene.axis !== 'horizontal' && scene.axis !== 'vertical') return `expected axis horizontal or vertical, got ${String(scene.axis)}`;
  for (const o of scene.objects) {
    if (!SIZE_NAMES.includes(o.size)) return `unknown size ${String(o.size)}`;
    if (isShape(o.name)) {
      if (o.color === null || !COLOR_NAMES.includes(o.color)) return `shape ${o.name} needs a known colour, got ${String(o.color)}`;
    } else if (isEmoji(o.name)) {
      if (o.color !== null) return `emoji ${o.name} carries no colour, got ${o.color}`;
    } else {
      return `unknown object ${o.name}`;
    }
  }
  return null;
}

/** Ordered pairs (earlier, later) along the axis: every relation a scene states, adjacent or not. */
export function orderedPairs(scene: Scene): Array<[SceneObject, SceneObject]> {
  const pairs: Array<[SceneObject, SceneObject]> = [];
  for (let i = 0; i < scene.objects.length; i += 1) {
    for (let j = i + 1; j < scene.objects.length; j += 1) {
      pairs.push([scene.objects[i] as SceneObject, scene.objects[j] as SceneObject]);
    }
  }
  return pairs;
}
