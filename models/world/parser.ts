/**
 * Caption -> canonical scene, the inverse of grammar.ts. It reads the same templates, so anything the
 * grammar writes parses back. Tolerates a leading capital, commas and a final full stop (the captioner's
 * post-processing); returns null for anything else, and for a caption two readings would disagree on.
 */
import { GROUPS, SIZE_WORDS, TEMPLATES, templateParts, type Axis, type TemplatePart } from './grammar.js';
import { canonicalScene, sceneKey, sceneProblem, type Scene, type SceneObject } from './scene.js';
import { COLOR_NAMES, isEmoji, isShape } from './vocabulary.js';

/** Lower-case words without punctuation. */
export function captionWords(caption: string): string[] {
  return caption.toLowerCase().replace(/[.,!;:]/g, ' ').split(/\s+/).filter((w) => w.length > 0);
}

const SIZE_OF_WORD = new Map<string, SceneObject['size']>();
for (const [size, words] of Object.entries(SIZE_WORDS) as Array<[SceneObject['size'], readonly string[]]>) {
  for (const word of words) SIZE_OF_WORD.set(word, size);
}

/** "a <size> [<colour>] <name>" at `at`: the object and where the phrase ends, or null. */
function parseNounPhrase(words: readonly string[], at: number): { object: SceneObject; next: number } | null {
  if (words[at] !== 'a' && words[at] !== 'an') return null;
  const size = SIZE_OF_WORD.get(words[at + 1] ?? '');
  if (size === undefined) return null;
  const third = words[at + 2] ?? '';
  if (COLOR_NAMES.includes(third)) {
    const name = words[at + 3] ?? '';
    return isShape(name) ? { object: { name, color: third, size }, next: at + 4 } : null;
  }
  return isEmoji(third) ? { object: { name: third, color: null, size }, next: at + 3 } : null;
}

/** Every way `parts[p..]` matches `words[w..]` exactly, each as the objects bound to their slots. */
function* match(
  parts: readonly TemplatePart[], p: number, words: readonly string[], w: number,
  axis: Axis, bound: ReadonlyMap<number, SceneObject>,
): Generator<ReadonlyMap<number, SceneObject>> {
  if (p === parts.length) {
    if (w === words.length) yield bound;
    return;
  }
  const part = parts[p] as TemplatePart;
  if (part.kind === 'word') {
    if (words[w] === part.word) yield* match(parts, p + 1, words, w + 1, axis, bound);
  } else if (part.kind === 'group') {
    for (const phrase of GROUPS[axis][part.group]) {
      const phraseWords = phrase.split(' ');
      if (phraseWords.every((word, k) => words[w + k] === word)) {
        yield* match(parts, p + 1, words, w + phraseWords.length, axis, bound);
      }
    }
  } else {
    const np = parseNounPhrase(words, w);
    if (np !== null) yield* match(parts, p + 1, words, np.next, axis, new Map(bound).set(part.index, np.object));
  }
}

const PARSED_TEMPLATES = ([1, 2, 3] as const).flatMap((count) =>
  TEMPLATES[count].map((template) => ({ count, parts: templateParts(template) })));

/** The scene a caption describes, or null when it is not a caption of the grammar. */
export function parseCaption(caption: string): Scene | null {
  const words = captionWords(caption);
  if (words.length === 0) return null;
  const found = new Map<string, Scene>();
  for (const { count, parts } of PARSED_TEMPLATES) {
    const axes: Axis[] = count === 1 ? ['horizontal'] : ['horizontal', 'vertical'];
    for (const axis of axes) {
      for (const bound of match(parts, 0, words, 0, axis, new Map())) {
        const objects: SceneObject[] = [];
        for (let i = 0; i < count; i += 1) {
          const object = bound.get(i);
          if (object !== undefined) objects.push(object);
        }
        if (objects.length !== count) continue;
        const scene = canonicalScene({ axis: count === 1 ? null : axis, objects });
        if (sceneProblem(scene) === null) found.set(sceneKey(scene), scene);
      }
    }
  }
  // Two different readings of one caption would make it ambiguous: count that as no parse.
  return found.size === 1 ? ([...found.values()][0] as Scene) : null;
}
