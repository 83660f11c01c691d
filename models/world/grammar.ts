/**
 * The caption grammar: templates with a few unambiguous synonyms and varied word order.
 * Every caption names every object with its size (and colour, for shapes), so each one parses back
 * to the full scene (see parser.ts, which reads these same templates).
 */
import { pick, shuffled, type Rng } from './random.js';
import type { Scene, SceneObject } from './scene.js';

export type Axis = 'horizontal' | 'vertical';

/** Synonyms for a size; the first is the one prompts use. */
export const SIZE_WORDS: Readonly<Record<SceneObject['size'], readonly string[]>> = {
  small: ['small', 'little', 'tiny'],
  big: ['big', 'large'],
};

/** Phrase groups a template refers to as `{name}`, per axis; the first phrase is the one prompts use. */
export type GroupName = 'before' | 'after' | 'order' | 'reverse' | 'first' | 'last';
export const GROUPS: Readonly<Record<Axis, Readonly<Record<GroupName, readonly string[]>>>> = {
  horizontal: {
    before: ['to the left of', 'left of', 'on the left of'],   // the earlier object relative to the later one
    after: ['to the right of', 'right of', 'on the right of'],
    order: ['from left to right'],
    reverse: ['from right to left'],
    first: ['on the left'],                                     // where the earlier object stands
    last: ['on the right'],
  },
  vertical: {
    before: ['above', 'over'],
    after: ['below', 'under', 'beneath'],
    order: ['from top to bottom'],
    reverse: ['from bottom to top'],
    first: ['at the top', 'on top'],
    last: ['at the bottom'],
  },
};

/**
 * Templates by object count. `{0}`..`{2}` are the objects in axis order (left to right, top to bottom),
 * each drawn as "a <size> [<colour>] <name>"; `{group}` is one phrase of a group above.
 * The first template of each list is the prompt form.
 */
export const TEMPLATES: Readonly<Record<1 | 2 | 3, readonly string[]>> = {
  1: [
    '{0}',
    'there is {0}',
    'a picture of {0}',
    '{0} on its own',
    'just {0}',
    '{0} alone',
  ],
  2: [
    '{0} {before} {1}',
    '{1} {after} {0}',
    'there is {0} {before} {1}',
    'there is {1} {after} {0}',
    '{0} is {before} {1}',
    '{1} is {after} {0}',
    '{0} and {1} {order}',
    '{1} and {0} {reverse}',
  ],
  3: [
    '{0} {before} {1} which is {before} {2}',
    '{2} {after} {1} which is {after} {0}',
    '{0} {1} and {2} {order}',
    '{2} {1} and {0} {reverse}',
    '{order} there is {0} then {1} then {2}',
    '{1} between {0} {first} and {2} {last}',
    '{1} with {0} {first} and {2} {last}',
  ],
};

export type TemplatePart =
  | { kind: 'word'; word: string }
  | { kind: 'object'; index: number }
  | { kind: 'group'; group: GroupName };

/** A template string split into words, object slots and group slots. */
export function templateParts(template: string): TemplatePart[] {
  return template.split(' ').map((token): TemplatePart => {
    const slot = /^\{(\w+)\}$/.exec(token);
    if (slot === null) return { kind: 'word', word: token };
    const name = slot[1] as string;
    if (/^\d$/.test(name)) return { kind: 'object', index: Number(name) };
    if (!(name in GROUPS.horizontal)) throw new Error(`Unknown group {${name}} in template "${template}"`);
    return { kind: 'group', group: name as GroupName };
  });
}

/** "a small red circle"; `choose` picks a synonym (random for references, the first for prompts). */
function nounPhrase(object: SceneObject, choose: (options: readonly string[]) => string): string {
  const words = ['a', choose(SIZE_WORDS[object.size])];
  if (object.color !== null) words.push(object.color);
  words.push(object.name);
  return words.join(' ');
}

function realize(template: string, scene: Scene, choose: (options: readonly string[]) => string): string {
  const axis: Axis = scene.axis ?? 'horizontal';
  return templateParts(template).map((part) => {
    if (part.kind === 'word') return part.word;
    if (part.kind === 'group') return choose(GROUPS[axis][part.group]);
    const object = scene.objects[part.index];
    if (object === undefined) throw new Error(`Template "${template}" needs object ${part.index}`);
    return nounPhrase(object, choose);
  }).join(' ');
}

function templatesFor(scene: Scene): readonly string[] {
  const n = scene.objects.length;
  if (n !== 1 && n !== 2 && n !== 3) throw new RangeError(`Expected a scene of one to three objects, got ${n}`);
  return TEMPLATES[n];
}

/**
 * `count` different reference captions for one scene: templates in a random order (each used once
 * before any repeats), synonyms drawn at random, duplicates skipped.
 */
export function captionsFor(scene: Scene, rng: Rng, count = 5): string[] {
  const templates = shuffled(rng, templatesFor(scene));
  const captions: string[] = [];
  const choose = (options: readonly string[]): string => pick(rng, options);
  for (let attempt = 0; captions.length < count && attempt < 64 * count; attempt += 1) {
    const caption = realize(templates[attempt % templates.length] as string, scene, choose);
    if (!captions.includes(caption)) captions.push(caption);
  }
  if (captions.length < count) throw new Error(`Could not find ${count} different captions for this scene`);
  return captions;
}

/** One plain caption of a scene, the prompt for text-to-image evaluation: first template, first synonyms. */
export function sceneToPrompt(scene: Scene): string {
  const first = templatesFor(scene)[0] as string;
  return realize(first, scene, (options) => options[0] as string);
}

/** Every word a caption of this grammar can contain, sorted (for a tokenizer's vocabulary). */
export function grammarWords(objectNames: readonly string[], colorNames: readonly string[]): string[] {
  const words = new Set<string>(['a', ...objectNames, ...colorNames]);
  for (const list of Object.values(SIZE_WORDS)) for (const w of list) words.add(w);
  for (const axis of Object.values(GROUPS)) {
    for (const phrases of Object.values(axis)) for (const phrase of phrases) for (const w of phrase.split(' ')) words.add(w);
  }
  for (const list of Object.values(TEMPLATES)) {
    for (const template of list) for (const part of templateParts(template)) if (part.kind === 'word') words.add(part.word);
  }
  return [...words].sort();
}
