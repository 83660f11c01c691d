/**
 * Per-stage times, measured by calling each stage directly on the sessions the pipelines use (the backend shares a
 * session per path + options, so these run warm on the very same graphs): text encoding, one UNet call, VAE decode,
 * PNG encode; caption image decode, encoder, one decoder step at the beam width.
 */
import { loadClipTokenizer } from '../inference/clip.tokenizer.js';
import { encodePng, imageToTensor } from '../inference/image.codec.js';
import { readCaptionerFolder, readTextToImageFolder } from '../inference/model-folder.js';
import { openModel, type BackendOptions, type OnnxModel, type TensorValue } from '../inference/onnx.backend.js';
import { gaussianNoise } from '../inference/schedulers/noise.js';
import { summarize, timeRuns, type Summary } from './bench.stats.js';

export interface ImagineStages {
  /** Tokenize [negative, prompt] and run the text encoder at batch 2 (classifier-free guidance). */
  text_encode_ms: Summary;
  /** One UNet call at batch 2 ([uncond, cond]): what one denoising step costs, less the scheduler's arithmetic. */
  unet_step_ms: Summary;
  vae_decode_ms: Summary;
  png_encode_ms: Summary;
  shapes: { unet_sample: number[]; encoder_hidden_states: number[]; latents: number[]; image: number[] };
}

export interface CaptionStages {
  image_decode_ms: Summary;
  encoder_ms: Summary;
  /** One decoder_step call with `beam` rows, the width of a beam search over one image. */
  decoder_step_ms: Summary;
  beam: number;
}

const noise = (size: number, seed: number): Float32Array => gaussianNoise(seed, 0).fill(new Float32Array(size));

async function withModels<T>(paths: readonly string[], backend: BackendOptions, fn: (models: OnnxModel[]) => Promise<T>): Promise<T> {
  const models: OnnxModel[] = [];
  try {
    for (const path of paths) models.push(await openModel(path, backend));
    return await fn(models);
  } finally {
    await Promise.all(models.map((model) => model.dispose()));
  }
}

export async function imagineStages(dir: string, backend: BackendOptions, prompts: readonly string[], runs: number, warmup: number):
  Promise<ImagineStages> {
  const folder = readTextToImageFolder(dir);
  const tokenizer = await loadClipTokenizer(folder.tokenizerDir);
  const L = tokenizer.modelMaxLength;
  const { latentChannels: C, latentFactor: f, scalingFactor, defaults } = folder;
  const h = defaults.height / f;
  const w = defaults.width / f;
  return withModels([folder.textEncoderPath, folder.unetPath, folder.vaeDecoderPath], backend, async ([textEncoder, unet, vae]) => {
    // encode prompt: [negative "", prompt] -> [2, L, D]
    let hidden: TensorValue<Float32Array> | undefined;
    const encode = async (i: number): Promise<void> => {
      const ids = new Int32Array(2 * L);
      ids.set(tokenizer.encode('').ids, 0);
      ids.set(tokenizer.encode(prompts[Math.abs(i) % prompts.length]!).ids, L);
      const data = textEncoder!.inputType('input_ids') === 'int64' ? BigInt64Array.from(ids, (id) => BigInt(id)) : ids;
      const out = await textEncoder!.run({ input_ids: { data, dims: [2, L] } }, [textEncoder!.outputNames[0]!]);
      hidden = out[textEncoder!.outputNames[0]!] as TensorValue<Float32Array>;
    };
    const textEncode = await timeRuns(runs, warmup, encode);
    if (!hidden) await encode(0);

    // one UNet call over [uncond, cond], fed as the pipeline feeds it: sample [2, C, h, w] and timestep [2] (or [1]
    // when the graph fixes it), or each latent once (pictalk.json `unet_shared_latents`): sample [1, C, h, w]
    const latentRows = folder.unetSharedLatents ? 1 : 2;
    const fixedTimestep = unet!.inputs.find((info) => info.name === 'timestep')?.shape[0] === 1;
    const timestepLength = fixedTimestep ? 1 : latentRows;
    const timestep = unet!.inputType('timestep') === 'int64'
      ? new BigInt64Array(timestepLength).fill(501n) : new Float32Array(timestepLength).fill(501);
    const sample = noise(latentRows * C * h * w, 1);
    const feeds = {
      sample: { data: sample, dims: [latentRows, C, h, w] },
      timestep: { data: timestep, dims: [timestepLength] },
      encoder_hidden_states: { data: hidden!.data, dims: hidden!.dims },
    };
    const unetStep = await timeRuns(runs, warmup, () => unet!.run(feeds, [unet!.outputNames[0]!]));

    // decode: latents / scaling_factor [1, C, h, w] -> [1, 3, H, W]
    const latents = noise(C * h * w, 2).map((v) => v / scalingFactor);
    let pixels: TensorValue<Float32Array> | undefined;
    const vaeDecode = await timeRuns(runs, warmup, async () => {
      const out = await vae!.run({ latent_sample: { data: latents, dims: [1, C, h, w] } }, [vae!.outputNames[0]!]);
      pixels = out[vae!.outputNames[0]!] as TensorValue<Float32Array>;
    });

    // PNG with the text chunks and AI-generated marker the pipeline writes
    const png = await timeRuns(runs, warmup, () => encodePng(pixels!.data, defaults.width, defaults.height, {
      aiGenerated: true,
      text: { prompt: prompts[0]!, negative_prompt: '', seed: '0', steps: String(defaults.steps), guidance: String(defaults.guidance),
        scheduler: defaults.scheduler, size: `${defaults.width}x${defaults.height}`, model: folder.name },
    }));
    return {
      text_encode_ms: summarize(textEncode),
      unet_step_ms: summarize(unetStep),
      vae_decode_ms: summarize(vaeDecode),
      png_encode_ms: summarize(png),
      shapes: { unet_sample: [latentRows, C, h, w], encoder_hidden_states: [...hidden!.dims], latents: [1, C, h, w], image: [...pixels!.dims] },
    };
  });
}

export async function captionStages(dir: string, backend: BackendOptions, images: readonly Buffer[], beam: number, runs: number, warmup: number):
  Promise<CaptionStages> {
  const folder = readCaptionerFolder(dir);
  const { config } = folder;
  const [height, width] = config.imageSize;
  const tensorOptions = { size: config.imageSize, mean: config.mean, std: config.std, kernel: 'bilinear' as const };
  return withModels([folder.encoderPath, folder.decoderPath], backend, async ([encoder, decoder]) => {
    const decode = await timeRuns(runs, warmup, (i) => imageToTensor(images[Math.abs(i) % images.length]!, tensorOptions));
    const pixels = await imageToTensor(images[0]!, tensorOptions);
    let encoded: Record<string, TensorValue> = {};
    const encode = await timeRuns(runs, warmup, async () => {
      encoded = await encoder!.run({ pixel_values: { data: pixels, dims: [1, 3, height, width] } });
    });
    // one step at the beam width: every row starts from the image's state, as the first step after <bos> does
    const features = encoded.features as TensorValue<Float32Array>;
    const h0 = encoded.h0 as TensorValue<Float32Array>;
    const c0 = encoded.c0 as TensorValue<Float32Array>;
    const layers = h0.dims[0]!;
    const hidden = h0.dims[2]!;
    const repeatRows = (data: Float32Array, slabs: number, rowSize: number): Float32Array => {
      const out = new Float32Array(slabs * beam * rowSize);
      for (let s = 0; s < slabs; s += 1) for (let r = 0; r < beam; r += 1) out.set(data.subarray(s * rowSize, (s + 1) * rowSize), (s * beam + r) * rowSize);
      return out;
    };
    const featureDims = features.dims.slice(1);
    const featureSize = featureDims.reduce((a, b) => a * b, 1);
    const ids = new Array<number>(beam).fill(config.bosId);
    const feeds = {
      input_ids: decoder!.inputType('input_ids') === 'int64'
        ? { data: BigInt64Array.from(ids, (id) => BigInt(id)), dims: [beam] } : { data: Int32Array.from(ids), dims: [beam] },
      h: { data: repeatRows(h0.data, layers, hidden), dims: [layers, beam, hidden] },
      c: { data: repeatRows(c0.data, layers, hidden), dims: [layers, beam, hidden] },
      // a step graph that carries its glimpse starts from the encoder's (models/README.md, "The carried glimpse")
      ...(decoder!.hasInput('context')
        ? { context: { data: repeatRows((encoded.context0 as TensorValue<Float32Array>).data, 1, encoded.context0!.dims[1]!), dims: [beam, encoded.context0!.dims[1]!] } }
        : {}),
      // a step graph with `feature_rows` reads the image's features once, every row pointing at it
      ...(decoder!.hasInput('feature_rows')
        ? { features, feature_rows: { data: new BigInt64Array(beam), dims: [beam] } }
        : { features: { data: repeatRows(features.data, 1, featureSize), dims: [beam, ...featureDims] } }),
    };
    const step = await timeRuns(runs, warmup, () => decoder!.run(feeds));
    return { image_decode_ms: summarize(decode), encoder_ms: summarize(encode), decoder_step_ms: summarize(step), beam };
  });
}
