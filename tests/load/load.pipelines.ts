/**
 * Fast fake pipelines for the load test: they return REAL artefacts (PNGs from the image codec, one Ogg Opus made once
 * by the real voice pipeline, captions that read the PNG header) after small random delays, and inject faults:
 * thrown errors, and hangs that only the core's job timeout ends (the hang waits for the abort signal).
 * Prompts containing `[slow]` run a longer, fault-free job with progress steps, so a cancel can catch it running.
 */
import { PictalkError } from '../../common/errors.js';
import type { InferencePipelines } from '../../inference/core.js';
import { encodePng, sniffFormat } from '../../inference/image.codec.js';
import { createTextToSpeech } from '../../inference/text-to-speech.pipeline.js';
import type {
  CaptionRequest, CaptionResult, GeneratedImage, ImagineRequest, ImagineResult, RunOptions, SpeakRequest, SpeechResult,
} from '../../inference/types.js';

/** mulberry32: a small seeded generator, so a run's plan and its injected faults can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultPlan {
  imagineFail: number;   // share of imagine calls that throw
  imagineHang: number;   // share that hang until the job timeout
  captionFail: number;   // share of caption items that come back as an Error
  captionHang: number;   // share of captionBatch calls that hang
  speakFail: number;     // share of speak calls that throw
}

export interface PipelineCounters {
  imagine: { calls: number; failed: number; hung: number; slow: number };
  caption: { calls: number; items: number; failed: number; hung: number };
  speak: { calls: number; failed: number };
}

/** One real voice clip, made once by the real text-to-speech pipeline (Flite -> Opus -> Ogg), reused by the fake. */
export async function realVoiceClip(): Promise<SpeechResult> {
  return createTextToSpeech().speak({ text: 'A small picture.' });
}

const cancelled = (what: string): PictalkError => new PictalkError('job.cancelled', `The ${what} call was aborted`);

/** Resolve after `ms`, or reject with `job.cancelled` as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(cancelled(what)); return; }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(timer); reject(cancelled(what)); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A hang: nothing happens until the core gives up on the job (timeout) and aborts the call. */
function hang(signal: AbortSignal | undefined, what: string): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;  // never settles: the core must still settle the job by its timeout
    if (signal.aborted) { reject(cancelled(what)); return; }
    signal.addEventListener('abort', () => reject(cancelled(what)), { once: true });
  });
}

/** Width and height from a PNG's IHDR chunk (bytes 16..23). */
function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** A real 8x8 PNG (upscaled x2) in one colour per seed, encoded by the same codec the real pipeline uses. */
async function drawPng(seed: number): Promise<Buffer> {
  const size = 8;
  const chw = new Float32Array(3 * size * size); // [3, H, W] in [-1, 1]
  const colour = [((seed >>> 0) % 255) / 127.5 - 1, ((seed >>> 8) % 255) / 127.5 - 1, ((seed >>> 16) % 255) / 127.5 - 1];
  for (let c = 0; c < 3; c++) chw.fill(colour[c]!, c * size * size, (c + 1) * size * size);
  return encodePng(chw, size, size, { upscale: 2, aiGenerated: true });
}

export function faultyPipelines(random: () => number, faults: FaultPlan, voice: SpeechResult, counters: PipelineCounters): InferencePipelines {
  const between = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

  async function imagine(request: ImagineRequest, options: RunOptions): Promise<ImagineResult> {
    counters.imagine.calls++;
    const slow = request.prompt.includes('[slow]');
    const roll = random();
    let steps = 3;
    let stepMs = between(5, 40);
    if (slow) {
      counters.imagine.slow++;
      steps = 8;
      stepMs = 150;
    } else if (roll < faults.imagineHang) {
      counters.imagine.hung++;
      return hang(options.signal, 'imagine');
    } else if (roll < faults.imagineHang + faults.imagineFail) {
      counters.imagine.failed++;
      await sleep(between(5, 40), options.signal, 'imagine');
      throw new Error('injected fault: the UNet ran out of memory');
    }
    // denoise
    for (let step = 1; step <= steps; step++) {
      await sleep(stepMs, options.signal, 'imagine');
      options.onProgress?.({ stage: 'denoise', step, total: steps });
    }
    // decode
    const count = request.count ?? 1;
    const seed = request.seed ?? 1;
    const images: GeneratedImage[] = [];
    for (let i = 0; i < count; i++) {
      const png = await drawPng(seed + i);
      images.push({ png, seed: seed + i, ...pngSize(png) });
    }
    return {
      kind: 'imagine',
      images,
      settings: {
        prompt: request.prompt, negativePrompt: request.negativePrompt ?? '', seed, steps: request.steps ?? 20,
        guidance: request.guidance ?? 7.5, width: images[0]!.width, height: images[0]!.height, scheduler: request.scheduler ?? 'pndm', count, candidates: 1,
      },
      model: { name: 'load-fake', hash: '0' },
      timingsMs: { denoise: steps * stepMs },
    };
  }

  async function captionBatch(requests: CaptionRequest[], options: RunOptions): Promise<ReadonlyArray<CaptionResult | Error>> {
    counters.caption.calls++;
    counters.caption.items += requests.length;
    if (random() < faults.captionHang) {
      counters.caption.hung++;
      return hang(options.signal, 'caption');
    }
    await sleep(between(5, 40), options.signal, 'caption');
    return requests.map((request) => {
      if (sniffFormat(request.image) !== 'png') {
        return new PictalkError('input.unsupported', 'Expected a PNG image (the load test only shares PNGs)');
      }
      if (random() < faults.captionFail) {
        counters.caption.failed++;
        return new Error('injected fault: the LSTM decoder failed');
      }
      const { width, height } = pngSize(request.image);
      const caption = `A small ${width} by ${height} picture.`;
      return { kind: 'caption', caption, tokens: caption.toLowerCase().replace('.', '').split(' '), score: -0.5, timingsMs: {} };
    });
  }

  async function speak(_request: SpeakRequest, options: RunOptions): Promise<SpeechResult> {
    counters.speak.calls++;
    await sleep(between(5, 25), options.signal, 'speak');
    if (random() < faults.speakFail) {
      counters.speak.failed++;
      throw new Error('injected fault: the voice engine failed');
    }
    return { ...voice, timingsMs: {} };
  }

  return { imagine, captionBatch, speak };
}

export const newCounters = (): PipelineCounters => ({
  imagine: { calls: 0, failed: 0, hung: 0, slow: 0 },
  caption: { calls: 0, items: 0, failed: 0, hung: 0 },
  speak: { calls: 0, failed: 0 },
});
