/**
 * Fits the builtin text-to-image model's live-preview map (inference/latent.preview.ts): the linear map from its
 * latent channels (scaled, as the sampler holds them) to RGB in [-1, 1] that best reproduces, by least squares, each
 * latent cell's mean colour. The pairs come from world pictures through the model's own `vae_encoder` (the posterior
 * mean); the map is judged on pictures it was not fitted on, against the published SD 1.5 factors as a baseline.
 *
 *   npx tsx models/train/fit_latent_preview.ts [--model DIR] [--fit N] [--check N] [--write]
 *
 * With --write it stores `latent_preview` in the folder's pictalk.json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { builtinModelDir } from '../../common/package-root.js';
import { readTextToImageFolder } from '../../inference/model-folder.js';
import { SD_LATENT_PREVIEW, latentsToPixels, type LatentPreviewMap } from '../../inference/latent.preview.js';
import { openModel, type TensorValue } from '../../inference/onnx.backend.js';
import { planImage } from '../world/dataset.writer.js';
import { WorldRenderer } from '../world/world.renderer.js';

const { values } = parseArgs({
  options: { model: { type: 'string' }, fit: { type: 'string' }, check: { type: 'string' }, write: { type: 'boolean' } },
});
const dir = values.model ?? builtinModelDir('text-to-image');
const fitCount = Number(values.fit ?? 600);
const checkCount = Number(values.check ?? 200);
/** A world seed of its own, so the fitted pictures are none of the training or evaluation sets'. */
const FIT_SEED = 7_700_001;

const folder = readTextToImageFolder(dir);
const { width, height } = folder.defaults;
const f = folder.latentFactor;
const [h, w, channels] = [height / f, width / f, folder.latentChannels];
const area = h * w;
const encoder = await openModel(join(dir, 'vae_encoder', 'model.onnx'));
const renderer = await WorldRenderer.create();

/** World picture i: its scaled latents [C, h, w] and each latent cell's mean colour [3, h, w] in [-1, 1]. */
async function pair(index: number): Promise<{ z: Float32Array; rgb: Float32Array }> {
  const { spec } = planImage(FIT_SEED, 'train', index);
  const { pixels } = renderer.draw(spec);                          // [64, 64, 3] bytes
  if (width !== 64 || height !== 64) throw new Error(`Expected the builtin's 64x64 pictures, got ${width}x${height}`);
  const sample = new Float32Array(3 * width * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      for (let c = 0; c < 3; c += 1) sample[c * width * height + y * width + x] = pixels[(y * width + x) * 3 + c]! / 127.5 - 1;
    }
  }
  const out = await encoder.run({ sample: { data: sample, dims: [1, 3, height, width] } });
  const z = (out[encoder.outputNames[0]!] as TensorValue<Float32Array>).data.slice(0, channels * area);
  for (let i = 0; i < z.length; i += 1) z[i]! *= folder.scalingFactor;
  const rgb = new Float32Array(3 * area);
  for (let c = 0; c < 3; c += 1) {
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) rgb[c * area + Math.floor(y / f) * w + Math.floor(x / f)]! += sample[c * width * height + y * width + x]! / (f * f);
    }
  }
  return { z, rgb };
}

/** Solve A x = b (n x n, several right-hand sides) by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[][]): number[][] {
  const n = a.length;
  const m = a.map((row, i) => [...row, ...b[i]!]);
  for (let col = 0; col < n; col += 1) {
    let pivot = col;
    for (let r = col + 1; r < n; r += 1) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < n; r += 1) {
      if (r === col) continue;
      const k = m[r]![col]! / m[col]![col]!;
      for (let c = col; c < m[r]!.length; c += 1) m[r]![c]! -= k * m[col]![c]!;
    }
  }
  return m.map((row, i) => row.slice(n).map((v) => v / m[i]![i]!));
}

// normal equations over every latent cell of the fitted pictures: features [z_0 .. z_{C-1}, 1]
const k = channels + 1;
const xtx = Array.from({ length: k }, () => new Array<number>(k).fill(0));
const xty = Array.from({ length: k }, () => new Array<number>(3).fill(0));
for (let i = 0; i < fitCount; i += 1) {
  const { z, rgb } = await pair(i);
  for (let cell = 0; cell < area; cell += 1) {
    const x = [...Array.from({ length: channels }, (_, c) => z[c * area + cell]!), 1];
    for (let r = 0; r < k; r += 1) {
      for (let c = 0; c < k; c += 1) xtx[r]![c]! += x[r]! * x[c]!;
      for (let c = 0; c < 3; c += 1) xty[r]![c]! += x[r]! * rgb[c * area + cell]!;
    }
  }
}
const weights = solve(xtx, xty);                                   // [C + 1][3]
const round = (v: number): number => Number(v.toFixed(4));
const fitted: LatentPreviewMap = {
  factors: weights.slice(0, channels).map((row) => [round(row[0]!), round(row[1]!), round(row[2]!)] as const),
  bias: [round(weights[channels]![0]!), round(weights[channels]![1]!), round(weights[channels]![2]!)],
  source: `models/train/fit_latent_preview.ts: least squares on ${fitCount} world pictures (seed ${FIT_SEED}) through vae_encoder`,
};

// judge on pictures the fit did not see: RMS error of the cell colours in [-1, 1], and R^2
async function judge(map: LatentPreviewMap): Promise<{ rms: number; r2: number }> {
  let se = 0;
  let total = 0;
  let n = 0;
  let sum = 0;
  const targets: number[] = [];
  for (let i = 0; i < checkCount; i += 1) {
    const { z, rgb } = await pair(fitCount + i);
    const guess = latentsToPixels(map, z, channels, h, w);
    for (let j = 0; j < rgb.length; j += 1) {
      se += (guess[j]! - rgb[j]!) ** 2;
      targets.push(rgb[j]!);
      sum += rgb[j]!;
      n += 1;
    }
  }
  const mean = sum / n;
  for (const t of targets) total += (t - mean) ** 2;
  return { rms: Math.sqrt(se / n), r2: 1 - se / total };
}
const [own, sd] = [await judge(fitted), await judge(SD_LATENT_PREVIEW)];
console.log(JSON.stringify({ latent_preview: fitted, held_out_pictures: checkCount, fitted: own, sd15_factors: sd }, null, 2));
await encoder.dispose();

if (values.write) {
  const path = join(dir, 'pictalk.json');
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  json.latent_preview = { rgb_factors: fitted.factors, rgb_bias: fitted.bias, source: fitted.source };
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
  console.error(`wrote latent_preview to ${path}`);
}
