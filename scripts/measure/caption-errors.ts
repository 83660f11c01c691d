/**
 * `caption_exact` on any number of held-out images, with every wrong caption listed (scene || caption): the eval's
 * own drawing, captioning (the folder's beam, int8 encoder as configured) and parsing, on `COUNT` images of `SPLIT`
 * at `SEED` (models/EVAL.md, "The colour read where its shape is read").
 *
 *   npx tsx scripts/measure/caption-errors.ts [DIR] [SEED] [COUNT] [test|compositional]
 */
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { captionAll } from '../../models/eval/caption.eval.js';
import { drawSplit } from '../../models/eval/heldout.set.js';
import { sceneToPrompt } from '../../models/world/grammar.js';
import { parseCaption } from '../../models/world/parser.js';
import { scenesEqual } from '../../models/world/scene.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';

const [dir = 'models/builtin/captioner', seed = '1234', count = '1000', split = 'test'] = process.argv.slice(2);
if (split !== 'test' && split !== 'compositional') throw new Error(`Expected the split test or compositional, got ${split}`);
const captioner = await loadImageToText(dir, { backend: { intraOpThreads: 1 } });
const images = await drawSplit(await WorldRenderer.create(), Number(seed), split, Number(count));
const captions = await captionAll(captioner, images, captioner.folder.config.beamSize);
let right = 0;
captions.forEach((caption, i) => {
  const parsed = parseCaption(caption);
  if (parsed && scenesEqual(parsed, images[i]!.scene)) right += 1;
  else console.log(`${sceneToPrompt(images[i]!.scene)}  ||  ${caption}`);
});
console.log(`exact ${right}/${images.length} = ${(right / images.length).toFixed(4)} (${dir}, seed ${seed}, ${split})`);
await captioner.dispose();
