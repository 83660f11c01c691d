/**
 * The evaluation's own held-out set, drawn fresh in memory with the world generator for an eval seed that is not
 * training's (training uses seed 1). Every image depends only on (seed, split, index) (see dataset.writer.ts
 * `planImage`), so one seed gives the same set on every run and machine.
 *
 * - `test` images: captioning metrics and the recognizer's ground-truth accuracy.
 * - `compositional` images: combinations never drawn in training (HELD_OUT).
 * - text-to-image prompts: the first K one-object and K two-object scenes of the test split (scanning past
 *   `count` when needed; planning a scene costs no pixels) and the first K compositional scenes.
 */
import { planImage, type SplitName } from '../world/dataset.writer.js';
import { sceneToPrompt } from '../world/grammar.js';
import { hashSeed } from '../world/random.js';
import { canonicalScene, type Scene } from '../world/scene.js';
import { WorldRenderer } from '../world/world.renderer.js';

export const DEFAULT_EVAL_SEED = 1234;

/** One drawn image of the held-out set with its five reference captions. */
export interface HeldOutImage {
  split: SplitName;
  index: number;
  scene: Scene;                // canonical: no boxes
  references: string[];        // the grammar's five captions
  png: Buffer;                 // 64x64 RGB, exactly as the world writer would write it
}

export type PromptCategory = 'single' | 'pair' | 'compositional';
export const PROMPT_CATEGORIES: readonly PromptCategory[] = ['single', 'pair', 'compositional'];

/** One text-to-image prompt: the plain prompt of a held-out scene and the seed its image is generated with. */
export interface EvalPrompt {
  category: PromptCategory;
  split: SplitName;
  index: number;               // of the scene in its split
  scene: Scene;
  prompt: string;              // sceneToPrompt(scene)
  seed: number;                // generation seed, from the eval seed
}

/** How far to scan the test split for one- and two-object scenes before giving up (20% and 40% of scenes). */
const MAX_SCAN = 1_000_000;

/** Draw `count` images of one split, rendered in memory. */
export async function drawSplit(renderer: WorldRenderer, seed: number, split: SplitName, count: number): Promise<HeldOutImage[]> {
  const images: HeldOutImage[] = [];
  for (let index = 0; index < count; index += 1) images.push(await drawImage(renderer, seed, split, index));
  return images;
}

export async function drawImage(renderer: WorldRenderer, seed: number, split: SplitName, index: number): Promise<HeldOutImage> {
  const { spec, captions } = planImage(seed, split, index);
  const { png } = await renderer.render(spec);
  return { split, index, scene: canonicalScene(spec.scene), references: captions, png };
}

/** The text-to-image prompts: `perCategory` each of one-object, two-object and compositional scenes. */
export function evalPrompts(seed: number, perCategory: number): EvalPrompt[] {
  const prompts: EvalPrompt[] = [];
  const make = (category: PromptCategory, split: SplitName, index: number, scene: Scene): EvalPrompt => ({
    category, split, index, scene, prompt: sceneToPrompt(scene),
    // its own stream per prompt: adding prompts never changes the images of the others
    seed: hashSeed(seed, 't2i', category, index),
  });
  for (const [category, objects] of [['single', 1], ['pair', 2]] as const) {
    let found = 0;
    for (let index = 0; found < perCategory; index += 1) {
      if (index >= MAX_SCAN) throw new Error(`Found only ${found} ${category} scenes in ${MAX_SCAN} test scenes`);
      const scene = canonicalScene(planImage(seed, 'test', index).spec.scene);
      if (scene.objects.length !== objects) continue;
      prompts.push(make(category, 'test', index, scene));
      found += 1;
    }
  }
  for (let index = 0; index < perCategory; index += 1) {
    prompts.push(make('compositional', 'compositional', index, canonicalScene(planImage(seed, 'compositional', index).spec.scene)));
  }
  return prompts;
}
