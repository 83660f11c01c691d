/**
 * The compositional split: combinations held out of train, val and test entirely, so a model is
 * judged on pairings it never saw. Two kinds: a colour on a shape ("green triangle"), and an object
 * before another along an axis ("cat left of dog"; "dog left of cat" stays in training).
 */
import type { Scene } from './scene.js';
import { orderedPairs } from './scene.js';

export type HeldOut =
  | { kind: 'color-shape'; color: string; shape: string }
  /** `subject` earlier than `object` along the axis ('left of': horizontal, 'above': vertical), adjacent or not. */
  | { kind: 'relation'; subject: string; relation: 'left of' | 'above'; object: string };

export const HELD_OUT: readonly HeldOut[] = [
  { kind: 'color-shape', color: 'green', shape: 'triangle' },
  { kind: 'color-shape', color: 'purple', shape: 'star' },
  { kind: 'color-shape', color: 'blue', shape: 'heart' },
  { kind: 'color-shape', color: 'yellow', shape: 'square' },
  { kind: 'relation', subject: 'cat', relation: 'left of', object: 'dog' },
  { kind: 'relation', subject: 'car', relation: 'above', object: 'tree' },
  { kind: 'relation', subject: 'circle', relation: 'left of', object: 'fish' },
  { kind: 'relation', subject: 'apple', relation: 'above', object: 'house' },
];

export function describeHeldOut(h: HeldOut): string {
  return h.kind === 'color-shape' ? `${h.color} ${h.shape}` : `${h.subject} ${h.relation} ${h.object}`;
}

/** The held-out combinations a scene contains (empty for every train, val and test scene). */
export function heldOutIn(scene: Scene, heldOut: readonly HeldOut[] = HELD_OUT): HeldOut[] {
  return heldOut.filter((h) => {
    if (h.kind === 'color-shape') return scene.objects.some((o) => o.name === h.shape && o.color === h.color);
    const axis = h.relation === 'left of' ? 'horizontal' : 'vertical';
    return scene.axis === axis && orderedPairs(scene).some(([a, b]) => a.name === h.subject && b.name === h.object);
  });
}
