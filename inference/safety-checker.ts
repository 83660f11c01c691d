/**
 * The safety checker step of diffusers' OnnxStableDiffusionPipeline, after decoding: each image goes through CLIP
 * preprocessing (`feature_extractor/preprocessor_config.json`) into `clip_input` [1, 3, H, W], and as decoded into
 * `images` [1, h, w, 3] in [0, 1]; the graph answers `has_nsfw_concepts` [1]. Like diffusers, one image per run:
 * the exported checker's batch axis is not trusted (diffusers loops "because of an issue with batched inputs").
 *
 * pictalk only reads the flag; the checker's image output (flagged images blacked out) is not used, since bot/
 * decides what a flagged image becomes (withheld, or a spoiler in an age-restricted channel).
 * @see diffusers/pipelines/stable_diffusion/pipeline_onnx_stable_diffusion.py (`if self.safety_checker is not None`)
 */
import { PictalkError } from '../common/errors.js';
import { chwToRgb, clipTensorSize, rgbToClipTensor } from './image.codec.js';
import type { SafetyCheckerFolder } from './model-folder.js';
import { openModel, type BackendOptions, type OnnxModel, type TensorValue } from './onnx.backend.js';

export const FLAG_OUTPUT = 'has_nsfw_concepts';

export interface SafetyChecker {
  readonly folder: SafetyCheckerFolder;
  /**
   * Flags for `offsets.length` decoded images of one batch: `pixels` [B, 3, H, W] in [-1, 1] (the VAE decoder's
   * output), image k at `offsets[k]`. True where the checker found NSFW concepts.
   */
  check(pixels: Float32Array, offsets: readonly number[], width: number, height: number): Promise<boolean[]>;
  dispose(): Promise<void>;
}

export async function loadSafetyChecker(folder: SafetyCheckerFolder, backend?: BackendOptions): Promise<SafetyChecker> {
  const model = await openModel(folder.modelPath, backend);
  try {
    validate(model);
  } catch (error) {
    await model.dispose();
    throw error;
  }
  return {
    folder,
    async check(pixels, offsets, width, height) {
      const [h, w] = clipTensorSize(width, height, folder.preprocessing);
      const flags: boolean[] = [];
      for (const offset of offsets) {
        const rgb = chwToRgb(pixels, width, height, offset);               // [H, W, 3], as numpy_to_pil rounds
        const clipInput = new Float32Array(3 * h * w);                     // [1, 3, h, w]
        await rgbToClipTensor(rgb, width, height, folder.preprocessing, clipInput);
        const images = new Float32Array(height * width * 3);               // [1, H, W, 3] in [0, 1]
        for (let c = 0; c < 3; c += 1) {
          const base = offset + c * width * height;
          for (let i = 0; i < width * height; i += 1) {
            const v = pixels[base + i]! * 0.5 + 0.5;
            images[i * 3 + c] = v >= 1 ? 1 : v > 0 ? v : 0;
          }
        }
        const out = await model.run({
          clip_input: { data: clipInput, dims: [1, 3, h, w] },
          images: { data: images, dims: [1, height, width, 3] },
        }, [FLAG_OUTPUT]);
        const flag = out[FLAG_OUTPUT] as TensorValue | undefined;
        const data = flag?.data as ArrayLike<number | bigint | boolean> | undefined;
        if (!data || data.length !== 1) {
          throw new PictalkError('model.invalid', `Expected ${folder.modelPath} to output \`${FLAG_OUTPUT}\` [1] for one image, got ${data ? `${data.length} values` : 'none'}`,
            { path: folder.modelPath });
        }
        flags.push(Boolean(data[0]));
      }
      return flags;
    },
    dispose: () => model.dispose(),
  };
}

/** The inputs and output diffusers' exporter writes: float32 `clip_input` and `images`, bool `has_nsfw_concepts`. */
function validate(model: OnnxModel): void {
  for (const name of ['clip_input', 'images']) {
    if (!model.hasInput(name)) {
      throw new PictalkError('model.invalid', `Expected ${model.path} to have an input named \`${name}\`, it has ${model.inputNames.join(', ')}`,
        { path: model.path });
    }
    const type = model.inputType(name);
    if (type !== 'float32') throw new PictalkError('model.invalid', `Expected input \`${name}\` of ${model.path} to be float32, got ${type}`, { path: model.path });
  }
  const extra = model.inputNames.filter((name) => name !== 'clip_input' && name !== 'images');
  if (extra.length > 0) {
    throw new PictalkError('model.invalid', `Expected ${model.path} to take only clip_input and images, it also takes ${extra.join(', ')}`, { path: model.path });
  }
  const output = model.outputs.find((info) => info.name === FLAG_OUTPUT);
  if (!output) {
    throw new PictalkError('model.invalid', `Expected ${model.path} to have an output named \`${FLAG_OUTPUT}\`, it has ${model.outputNames.join(', ')}`,
      { path: model.path });
  }
  if (output.dtype !== 'bool') {
    throw new PictalkError('model.invalid', `Expected output \`${FLAG_OUTPUT}\` of ${model.path} to be bool, got ${output.dtype}`, { path: model.path });
  }
}
