/**
 * The benchmark's inputs, drawn from the builtin world so a fresh clone needs no dataset: prompts (each different,
 * so the text encoder runs rather than its cache), 64x64 PNGs to caption, and the twelve-word caption to speak.
 */
import { planImage } from '../models/world/dataset.writer.js';
import { sceneToPrompt } from '../models/world/grammar.js';
import { WorldRenderer } from '../models/world/world.renderer.js';

/** Seed of the bench's own scenes (the test split of this seed; any seed would do). */
const SEED = 7;

/** Twelve words, the length of a typical world caption. */
export const SPEAK_TEXT = 'A big red circle to the left of a small blue star.';

export function benchPrompts(count: number): string[] {
  return Array.from({ length: count }, (_, i) => sceneToPrompt(planImage(SEED, 'test', i).spec.scene));
}

export async function benchImages(count: number): Promise<Buffer[]> {
  const renderer = await WorldRenderer.create();
  return Promise.all(Array.from({ length: count }, async (_, i) => (await renderer.render(planImage(SEED, 'test', i).spec)).png));
}
