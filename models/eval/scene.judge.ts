/**
 * GenEval-style judging of one image: the scene a prompt asked for against the scene the recognizer saw.
 * @see Ghosh et al., "GenEval: An Object-Focused Framework for Evaluating Text-to-Image Alignment" (2023):
 *   per-task checks of object presence, counting, colour, position and colour attribution; all-correct per image.
 *
 * Attributes are judged through a name-preserving assignment of prompted objects to seen objects (each seen object
 * used once), so a colour is right only on the object it was asked for (GenEval's "colour attribution"):
 * - object:   every prompted object's name is seen (injectively).
 * - count:    as many objects seen as prompted.
 * - color:    an assignment exists where every prompted object meets a seen one of its name and colour
 *             (only prompts with a coloured object, i.e. a shape; emoji carry no colour).
 * - size:     the same with name and size.
 * - position: (prompts of two or more objects) the seen axis is the prompted one and an assignment by name keeps
 *             the prompted order along it ("a left of b" seen as "b left of a" fails).
 * - all:      the seen scene equals the prompted scene (scenesEqual on the canonical scene).
 */
import type { Scene } from '../world/scene.js';
import type { RecognizedObject, RecognizedScene } from './recognizer.js';

export const ATTRIBUTES = ['object', 'count', 'color', 'size', 'position', 'all'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

/** true/false per attribute; null where the attribute does not apply to the prompt. */
export type Judgement = Record<Attribute, boolean | null>;

/** Every injective map of `n` prompted objects into `m` seen slots, as arrays of slot indices (n, m <= 3: <= 6 maps). */
function injections(n: number, m: number): number[][] {
  const out: number[][] = [];
  const walk = (prefix: number[]): void => {
    if (prefix.length === n) { out.push(prefix); return; }
    for (let j = 0; j < m; j += 1) if (!prefix.includes(j)) walk([...prefix, j]);
  };
  walk([]);
  return out;
}

const objectKey = (o: RecognizedObject): string => `${o.size} ${o.color ?? '-'} ${o.name}`;

export function judgeScene(prompt: Scene, seen: RecognizedScene): Judgement {
  const asked = prompt.objects;
  const got = seen.objects;
  const maps = injections(asked.length, got.length);
  const exists = (ok: (a: RecognizedObject, g: RecognizedObject) => boolean, ordered = false): boolean =>
    maps.some((map) => map.every((j, i) => ok(asked[i]!, got[j]!)) && (!ordered || map.every((j, i) => i === 0 || j > map[i - 1]!)));
  const sameName = (a: RecognizedObject, g: RecognizedObject): boolean => a.name === g.name;
  const multi = asked.length > 1;
  const all = asked.length === got.length
    && (!multi || prompt.axis === seen.axis)
    && asked.every((a, i) => objectKey(a) === objectKey(got[i]!));
  return {
    object: exists(sameName),
    count: asked.length === got.length,
    color: asked.some((a) => a.color !== null) ? exists((a, g) => sameName(a, g) && a.color === g.color) : null,
    size: exists((a, g) => sameName(a, g) && a.size === g.size),
    position: multi ? prompt.axis === seen.axis && exists(sameName, true) : null,
    all,
  };
}

/** Share of true among the judgements where an attribute applies, and how many applied. */
export interface AttributeRates {
  rates: Record<Attribute, number | null>;   // null when it applied to none
  counts: Record<Attribute, number>;
}

export function attributeRates(judgements: readonly Judgement[]): AttributeRates {
  const rates = {} as Record<Attribute, number | null>;
  const counts = {} as Record<Attribute, number>;
  for (const attribute of ATTRIBUTES) {
    const applied = judgements.map((j) => j[attribute]).filter((v): v is boolean => v !== null);
    counts[attribute] = applied.length;
    rates[attribute] = applied.length === 0 ? null : applied.filter(Boolean).length / applied.length;
  }
  return { rates, counts };
}
