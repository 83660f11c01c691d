/**
 * The most a DDIM image could gain if its UNet calls crossed no thread (scripts/BENCH.md, "The round of the bounds"):
 * the builtin pipeline makes one-candidate DDIM images (10 steps, as the bench's PyTorch comparison), image by image
 * in turn three ways:
 *
 * - shipped: every `OnnxModel.run` goes to the inference thread and back;
 * - main: the same UNet graph on a session of the main thread, with the inference thread's options (one thread, no
 *   spinning);
 * - main + round trip: as `main`, and each UNet call also makes a call of the tiny test graph on the inference thread
 *   (a message there and back, no work): whether the messages or the thread's graph calls are what costs.
 *
 * It is a bound, not a design: the bot keeps onnxruntime off the main thread so that a 10 ms graph call never holds
 * up a platform's acknowledgement (scripts/BENCH.md, "The round of the Discord interactions endpoint"). Only the
 * UNet moves; the text encoder and the VAE decoder stay on the inference thread in both.
 *
 *   npx tsx scripts/measure/thread-hop-bound.ts [rounds]
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { builtinModelDir } from '../../common/package-root.js';
import { OnnxModel, openModel, type Feeds, type TensorValue } from '../../inference/onnx.backend.js';
import { loadImageToText } from '../../inference/image-to-text.pipeline.js';
import { loadTextToImage } from '../../inference/text-to-image.pipeline.js';
import { benchPrompts } from '../bench.inputs.js';

const rounds = Number(process.argv[2] ?? 6);
const perRound = 24;
/** What this uses of onnxruntime-node, loaded by name: only inference/onnx.backend.ts imports it (eslint.config.js). */
interface OrtTensor { data: Float32Array | BigInt64Array; dims: readonly number[] }
interface Ort {
  Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(path: string, options: Record<string, unknown>): Promise<{ run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }> };
}
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;
const unetPath = join(builtinModelDir('text-to-image'), 'unet', 'model.onnx');
const onMain = await ort.InferenceSession.create(unetPath, {
  intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
});

// the UNet's calls go to the main thread's session while `mainThread` is set; every other graph as shipped
type Way = 'shipped' | 'main' | 'main + round trip';
const ways: Way[] = ['shipped', 'main', 'main + round trip'];
let way: Way = 'shipped';
const tiny = await openModel('tests/fixtures/onnx-backend/add_timestep.onnx');
const tinyFeeds = { x: { data: new Float32Array(3), dims: [1, 3] }, t: { data: new BigInt64Array([1n]), dims: [1] } };
const shipped = OnnxModel.prototype.run;
OnnxModel.prototype.run = async function run(this: OnnxModel, feeds: Feeds, outputs?: Parameters<OnnxModel['run']>[1], lend?: readonly string[]) {
  if (way === 'shipped' || this.path !== unetPath) return shipped.call(this, feeds, outputs, lend);
  if (way === 'main + round trip') await shipped.call(tiny, tinyFeeds);
  const tensors: Record<string, OrtTensor> = {};
  for (const [name, value] of Object.entries(feeds)) {
    tensors[name] = new ort.Tensor(value.data instanceof BigInt64Array ? 'int64' : 'float32', value.data as Float32Array | BigInt64Array, value.dims);
  }
  const result = await onMain.run(tensors);
  const given = outputs && !Array.isArray(outputs) ? outputs as Record<string, TensorValue<Float32Array> | null> : {};
  const out: Record<string, TensorValue> = {};
  for (const [name, tensor] of Object.entries(result)) {
    const buffer = given[name];
    if (buffer) buffer.data.set(tensor.data as Float32Array);
    out[name] = buffer ?? { data: tensor.data as Float32Array, dims: tensor.dims };
  }
  return out;
};

const backend = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
const captioner = await loadImageToText(builtinModelDir('captioner'), { backend });
const t2i = await loadTextToImage(builtinModelDir('text-to-image'), { backend, scorer: captioner.scoreText });
const prompts = benchPrompts(256);
const defaults = t2i.settingsFor({ prompt: prompts[0]!, seed: 0 });
const ddim = { scheduler: 'ddim' as const, steps: defaults.steps, guidance: defaults.guidance, count: 1, candidates: 1 };
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

for (let i = 0; i < 6; i += 1) {
  way = ways[i % ways.length]!;
  await t2i.imagine({ prompt: prompts[i]!, seed: i, ...ddim });
}
process.stdout.write(`DDIM images (${ddim.steps} steps, guidance ${ddim.guidance}, one candidate), ${perRound} a round, the ways in turn; ms without the PNG\n`);
const gains: Record<Way, number[]> = { shipped: [], main: [], 'main + round trip': [] };
for (let r = 0; r < rounds; r += 1) {
  const times: Record<Way, number[]> = { shipped: [], main: [], 'main + round trip': [] };
  for (let i = 0; i < perRound; i += 1) {
    way = ways[i % ways.length]!;
    const { timingsMs } = await t2i.imagine({ prompt: prompts[(r * perRound + i) % prompts.length]!, seed: 100 + r * perRound + i, ...ddim });
    times[way].push(timingsMs.total! - (timingsMs.png ?? 0));
  }
  const base = median(times.shipped);
  for (const w of ways) gains[w].push(1 - median(times[w]) / base);
  process.stdout.write(`round ${r + 1}: ${ways.map((w) => `${w} ${median(times[w]).toFixed(1)} ms`).join(', ')}\n`);
}
process.stdout.write(`median, less than shipped: main ${(100 * median(gains.main)).toFixed(1)}%, main + round trip ${(100 * median(gains['main + round trip'])).toFixed(1)}%\n`);
await Promise.all([t2i.dispose(), captioner.dispose(), tiny.dispose()]);
await onMain.release();
