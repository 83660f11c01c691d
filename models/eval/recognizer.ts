/**
 * The independent recognizer (models/train/recognizer.py), run on ONNX Runtime to judge images.
 * Trained only on drawn ground truth; it reads a 64x64 image and predicts the canonical scene.
 *
 * recognizer.onnx: pixel_values float32 [B, 3, H, W], RGB / 255 then (x - mean) / std (config.json) ->
 *   count_logits [B, 3], axis_logits [B, 2], name_logits [B, S, names], color_logits [B, S, colors],
 *   size_logits [B, S, sizes]; slots ordered left -> right or top -> bottom as in the canonical scene.
 */
import { join, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { PictalkError, describe } from '../../common/errors.js';
import { imageToTensor } from '../../inference/image.codec.js';
import { readJson, requireFile } from '../../inference/model-folder.js';
import { openModel, type BackendOptions, type OnnxModel, type TensorValue } from '../../inference/onnx.backend.js';
import type { Scene } from '../world/scene.js';

export const RECOGNIZER_OUTPUTS = ['count_logits', 'axis_logits', 'name_logits', 'color_logits', 'size_logits'] as const;
type OutputName = (typeof RECOGNIZER_OUTPUTS)[number];

export interface RecognizerLabels {
  names: string[];             // names[0] = 'none' (an empty slot)
  colors: string[];            // colors[0] = 'none' (emoji, empty slot) -> null
  sizes: string[];             // ['none', 'small', 'big']
  axes: string[];              // ['horizontal', 'vertical']
  counts: number[];            // [1, 2, 3]
  slots: number;
}

export interface RecognizerConfig {
  imageSize: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  labels: RecognizerLabels;
}

/** A predicted object: labels as the recognizer says them ('none' is possible where a slot looks empty). */
export interface RecognizedObject {
  name: string;
  color: string | null;
  size: string;
}

export interface RecognizedScene {
  axis: Scene['axis'];
  objects: RecognizedObject[];
}

function invalid(path: string, message: string): PictalkError {
  return new PictalkError('model.invalid', message, { path });
}

function stringList(value: unknown, key: string, path: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string')) {
    throw invalid(path, `Expected \`labels.${key}\` in ${path} to be a non-empty list of strings, got ${describe(JSON.stringify(value))}`);
  }
  return value as string[];
}

function numbers(value: unknown, key: string, path: string, length: number, positive: boolean): number[] {
  if (!Array.isArray(value) || value.length !== length || value.some((v) => typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0))) {
    throw invalid(path, `Expected \`${key}\` in ${path} to be ${length} ${positive ? 'positive ' : ''}numbers, got ${describe(JSON.stringify(value))}`);
  }
  return value as number[];
}

/** Read and validate `config.json` of a recognizer folder. */
export function readRecognizerConfig(dirIn: string): { dir: string; modelPath: string; config: RecognizerConfig } {
  const dir = resolve(dirIn);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw invalid(dir, `Expected a recognizer folder at ${dir}, found none`);
  const path = join(dir, 'config.json');
  const json = readJson(path);
  const modelPath = requireFile(join(dir, 'recognizer.onnx'));
  const [height, width] = numbers(json.image_size, 'image_size', path, 2, true) as [number, number];
  if (!Number.isInteger(height) || !Number.isInteger(width)) throw invalid(path, `Expected \`image_size\` in ${path} to be two integers, got ${JSON.stringify(json.image_size)}`);
  const labelsJson = json.labels;
  if (labelsJson === null || typeof labelsJson !== 'object') throw invalid(path, `Expected \`labels\` in ${path} to be an object, got ${describe(labelsJson)}`);
  const l = labelsJson as Record<string, unknown>;
  const counts = numbers(l.counts, 'labels.counts', path, Array.isArray(l.counts) ? l.counts.length : 0, true);
  const slots = l.slots;
  if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || counts.some((c) => !Number.isInteger(c) || c > slots)) {
    throw invalid(path, `Expected \`labels.slots\` in ${path} to be a positive integer at least every count, got ${describe(slots)}`);
  }
  const labels: RecognizerLabels = {
    names: stringList(l.names, 'names', path),
    colors: stringList(l.colors, 'colors', path),
    sizes: stringList(l.sizes, 'sizes', path),
    axes: stringList(l.axes, 'axes', path),
    counts,
    slots,
  };
  for (const axis of labels.axes) {
    if (axis !== 'horizontal' && axis !== 'vertical') throw invalid(path, `Expected \`labels.axes\` in ${path} to hold horizontal and vertical, got ${describe(axis)}`);
  }
  return {
    dir, modelPath,
    config: {
      imageSize: [height, width],
      mean: numbers(json.mean, 'mean', path, 3, false) as [number, number, number],
      std: numbers(json.std, 'std', path, 3, true) as [number, number, number],
      labels,
    },
  };
}

function argmax(data: Float32Array, from: number, size: number): number {
  let best = 0;
  for (let i = 1; i < size; i += 1) if (data[from + i]! > data[from + best]!) best = i;
  return best;
}

/**
 * Logits -> scenes, as config.json's `decoding` says: count = counts[argmax]; axis = axes[argmax] (null for one
 * object); for slot k < count: name, colour ('none' -> null) and size by argmax. Pure, for tests with fake outputs.
 */
export function decodeRecognizerOutputs(outputs: Readonly<Record<OutputName, TensorValue<Float32Array>>>, labels: RecognizerLabels): RecognizedScene[] {
  const batch = outputs.count_logits.dims[0] ?? 0;
  const expect = (name: OutputName, dims: readonly number[]): void => {
    const got = outputs[name].dims;
    if (got.length !== dims.length || got.some((d, i) => d !== dims[i]) || outputs[name].data.length !== dims.reduce((a, b) => a * b, 1)) {
      throw new PictalkError('inference.failed', `Expected recognizer output \`${name}\` of shape [${dims.join(', ')}], got [${got.join(', ')}]`);
    }
  };
  const S = labels.slots;
  expect('count_logits', [batch, labels.counts.length]);
  expect('axis_logits', [batch, labels.axes.length]);
  expect('name_logits', [batch, S, labels.names.length]);
  expect('color_logits', [batch, S, labels.colors.length]);
  expect('size_logits', [batch, S, labels.sizes.length]);
  const scenes: RecognizedScene[] = [];
  for (let b = 0; b < batch; b += 1) {
    const count = labels.counts[argmax(outputs.count_logits.data, b * labels.counts.length, labels.counts.length)]!;
    const axis = labels.axes[argmax(outputs.axis_logits.data, b * labels.axes.length, labels.axes.length)] as 'horizontal' | 'vertical';
    const objects: RecognizedObject[] = [];
    for (let k = 0; k < count; k += 1) {
      const slot = b * S + k;
      const color = labels.colors[argmax(outputs.color_logits.data, slot * labels.colors.length, labels.colors.length)]!;
      objects.push({
        name: labels.names[argmax(outputs.name_logits.data, slot * labels.names.length, labels.names.length)]!,
        color: color === 'none' ? null : color,
        size: labels.sizes[argmax(outputs.size_logits.data, slot * labels.sizes.length, labels.sizes.length)]!,
      });
    }
    scenes.push({ axis: count > 1 ? axis : null, objects });
  }
  return scenes;
}

export interface Recognizer {
  readonly dir: string;
  readonly config: RecognizerConfig;
  /** Predict the scene of each image (PNG or any format image.codec reads), in batches. */
  recognize(images: readonly Buffer[]): Promise<RecognizedScene[]>;
  dispose(): Promise<void>;
}

export async function loadRecognizer(dirIn: string, options: { backend?: BackendOptions; maxBatch?: number } = {}): Promise<Recognizer> {
  const { dir, modelPath, config } = readRecognizerConfig(dirIn);
  const model: OnnxModel = await openModel(modelPath, options.backend);
  if (!model.hasInput('pixel_values')) {
    await model.dispose();
    throw invalid(modelPath, `Expected ${modelPath} to have an input named \`pixel_values\`, it has ${model.inputNames.join(', ')}`);
  }
  const missing = RECOGNIZER_OUTPUTS.filter((name) => !model.outputNames.includes(name));
  if (missing.length > 0) {
    await model.dispose();
    throw invalid(modelPath, `Expected ${modelPath} to have outputs ${RECOGNIZER_OUTPUTS.join(', ')}, it lacks ${missing.join(', ')}`);
  }
  const maxBatch = options.maxBatch ?? 64;
  const [height, width] = config.imageSize;
  const plane = 3 * height * width;
  return {
    dir, config,
    async recognize(images) {
      const scenes: RecognizedScene[] = [];
      for (let start = 0; start < images.length; start += maxBatch) {
        const chunk = images.slice(start, start + maxBatch);
        const pixels = new Float32Array(chunk.length * plane);                       // [B, 3, H, W]
        // the recognizer's training preprocessing: RGB over white, bilinear resize only if the size differs
        for (let i = 0; i < chunk.length; i += 1) {
          await imageToTensor(chunk[i]!, { size: config.imageSize, mean: config.mean, std: config.std, kernel: 'bilinear' }, pixels, i * plane);
        }
        const out = await model.run({ pixel_values: { data: pixels, dims: [chunk.length, 3, height, width] } }, RECOGNIZER_OUTPUTS);
        scenes.push(...decodeRecognizerOutputs(out as Record<OutputName, TensorValue<Float32Array>>, config.labels));
      }
      return scenes;
    },
    dispose: () => model.dispose(),
  };
}
