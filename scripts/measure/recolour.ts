/**
 * The experiment behind the captioner of the hardening round (models/EVAL.md, "The colour read where its shape is
 * read"): caption each image as the folder does, then read every colour word again from the logits of the step after
 * it (the step whose glimpse its shape word is read from) and count both captions' exact share. Meaningful for a
 * captioner that reads its colour words as one input word, as the captioner before that round did:
 *
 *   mkdir -p /tmp/cap-old && for f in config.json decoder_step.onnx encoder.int8.onnx encoder.onnx vocab.json; do
 *     git show ff116bf:models/builtin/captioner/$f > /tmp/cap-old/$f; done
 *   npx tsx scripts/measure/recolour.ts /tmp/cap-old 8 2000
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageToTensor } from '../../inference/image.codec.js';
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { openModel } from '../../inference/onnx.backend.js';
import { drawSplit } from '../../models/eval/heldout.set.js';
import { parseCaption } from '../../models/world/parser.js';
import { scenesEqual } from '../../models/world/scene.js';
import { WorldRenderer } from '../../models/world/world.renderer.js';

const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];
const [dir = 'models/builtin/captioner', seed = '8', count = '2000'] = process.argv.slice(2);
const backend = { intraOpThreads: 1 };
const captioner = await loadImageToText(dir, { backend });
const { config } = captioner.folder;
const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as string[];
const encoder = await openModel(captioner.folder.encoderPath, backend);
const decoder = await openModel(captioner.folder.decoderPath, backend);
const colours = COLOURS.map((word) => vocab.indexOf(word));
const [height, width] = config.imageSize;
const images = await drawSplit(await WorldRenderer.create(), Number(seed), 'test', Number(count));
let asSearched = 0;
let reread = 0;
let changed = 0;
for (const image of images) {
  const result = await captioner.caption({ image: image.png });
  const ids = result.tokens.map((word) => vocab.indexOf(word));
  const pixels = await imageToTensor(image.png, { size: [height, width], mean: config.mean, std: config.std, kernel: 'bilinear' });
  const encoded = await encoder.run({ pixel_values: { data: pixels, dims: [1, 3, height, width] } });
  let h = encoded.h0!.data as Float32Array;
  let c = encoded.c0!.data as Float32Array;
  let context = encoded.context0?.data as Float32Array | undefined;   // a step graph that carries its glimpse
  const dims = encoded.h0!.dims;
  const fixed = [...ids];
  const inputs = [config.bosId, ...ids];
  for (let t = 0; t < inputs.length; t += 1) {
    const out = await decoder.run({
      input_ids: { data: BigInt64Array.from([BigInt(inputs[t]!)]), dims: [1] }, h: { data: h, dims }, c: { data: c, dims },
      ...(context ? { context: { data: context, dims: [1, context.length] } } : {}),
      features: { data: encoded.features!.data, dims: encoded.features!.dims }, feature_rows: { data: BigInt64Array.from([0n]), dims: [1] },
    });
    const logits = out.logits!.data as Float32Array;
    h = out.h_out!.data as Float32Array;
    c = out.c_out!.data as Float32Array;
    context = out.context_out?.data as Float32Array | undefined;
    if (t >= 1 && colours.includes(ids[t - 1]!)) {   // the word fed in at step t was a colour: choose it again here
      const best = colours.reduce((a, b) => (logits[b]! > logits[a]! ? b : a));
      if (best !== ids[t - 1]) changed += 1;
      fixed[t - 1] = best;
    }
  }
  const again = fixed.filter((id) => id >= 4).map((id) => vocab[id]).join(' ');
  const first = parseCaption(result.caption);
  const second = parseCaption(again);
  if (first && scenesEqual(first, image.scene)) asSearched += 1;
  if (second && scenesEqual(second, image.scene)) reread += 1;
}
console.log(`seed ${seed}, ${images.length} test images: exact ${(asSearched / images.length).toFixed(4)} as searched, ` +
  `${(reread / images.length).toFixed(4)} with each colour read at the next step (${changed} colours changed)`);
await Promise.all([captioner.dispose(), encoder.dispose(), decoder.dispose()]);
