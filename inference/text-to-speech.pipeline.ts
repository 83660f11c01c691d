/**
 * Text-to-speech: text -> PCM (Flite) -> 48 kHz mono (windowed-sinc polyphase resampler) -> Opus 20 ms frames ->
 * Ogg Opus, plus the duration and the 256-value waveform a Discord voice message shows.
 * @see https://discord.com/developers/docs/reference#uploading-files (voice messages: `duration_secs`, `waveform`)
 */
import { PictalkError, asInferenceError, describe } from '../common/errors.js';
import { encodeOpus, OPUS_SAMPLE_RATE, OPUS_VENDOR } from './opus.codec.js';
import { writeOggOpus } from './ogg-opus.js';
import { createSpeechRenderer, type RenderedSpeech } from './speech.renderer.js';
import { DEFAULT_VOICE, TTS_VOICES, isTtsVoice, loadTtsEngine, synthesize, type TtsVoice } from './tts.engine.js';
import type { RunOptions, SpeakRequest, SpeechResult } from './types.js';

/** Longest text spoken, in characters: about a minute of speech, and a bound on the synthesis time. */
export const MAX_SPEAK_CHARS = 1000;
export const WAVEFORM_LENGTH = 256;

export interface TextToSpeechOptions {
  maxChars?: number;
  bitrate?: number;
  defaultVoice?: string;
  /** Render speech on a worker thread when the compiled worker is there (default true). */
  worker?: boolean;
}

export interface TextToSpeech {
  speak(request: SpeakRequest, options?: RunOptions): Promise<SpeechResult>;
  /** Compile the engine now, so the first request does not pay for it. */
  load(): Promise<void>;
  /** Where speech is rendered: a worker thread, or the calling thread (running from the TypeScript sources). */
  readonly synthesisMode: 'worker' | 'thread';
  /** Stop the worker thread, if any. */
  close(): Promise<void>;
}

export function createTextToSpeech(settings: TextToSpeechOptions = {}): TextToSpeech {
  const maxChars = settings.maxChars ?? MAX_SPEAK_CHARS;
  const bitrate = settings.bitrate ?? 40000;
  const defaultVoice = settings.defaultVoice ?? DEFAULT_VOICE;
  if (!isTtsVoice(defaultVoice)) {
    throw new PictalkError('config.invalid', `Expected \`defaultVoice\` to be one of ${TTS_VOICES.join(', ')}, got ${describe(defaultVoice)}`);
  }
  const renderer = createSpeechRenderer({ render: renderSpeech, load: async () => { await loadTtsEngine(); } }, { worker: settings.worker ?? true });

  async function speak(request: SpeakRequest, options: RunOptions = {}): Promise<SpeechResult> {
    const checkAbort = (): void => {
      if (options.signal?.aborted) throw new PictalkError('job.cancelled', 'The speech job was cancelled');
    };

    // validate
    const text = validateText(request?.text, maxChars);
    const voice = request.voice ?? defaultVoice;
    if (!isTtsVoice(voice)) {
      throw new PictalkError('input.invalid', `Expected \`voice\` to be one of ${TTS_VOICES.join(', ')}, got ${describe(voice)}`);
    }
    checkAbort();

    try {
      options.onProgress?.({ stage: 'synthesize', step: 0, total: 1 });
      const speech = await renderer.render(text, voice, bitrate);
      checkAbort();
      options.onProgress?.({ stage: 'encode', step: 1, total: 1 });
      return { kind: 'speak', ...speech };
    } catch (error) {
      throw asInferenceError(error, 'Speech synthesis');
    }
  }

  return { speak, load: () => renderer.load(), synthesisMode: renderer.mode, close: () => renderer.close() };
}

/**
 * Text (already validated) -> Ogg Opus with its duration and waveform: Flite, 48 kHz resampling, Opus 20 ms frames,
 * Ogg. Synchronous work of tens to hundreds of milliseconds: the pipeline runs it on the speech worker thread.
 */
export async function renderSpeech(text: string, voice: TtsVoice, bitrate: number): Promise<RenderedSpeech> {
  const timingsMs: Record<string, number> = {};
  let mark = performance.now();
  const lap = (name: string): void => { const now = performance.now(); timingsMs[name] = now - mark; mark = now; };
  const speech = await synthesize(text, voice);
  lap('synthesize');
  const pcm = toInt16(resample(speech.samples, speech.sampleRate, OPUS_SAMPLE_RATE));
  lap('resample');
  const opus = encodeOpus(pcm, { bitrate, application: 'voip' });
  const ogg = writeOggOpus({ ...opus, inputSampleRate: OPUS_SAMPLE_RATE, vendor: OPUS_VENDOR, comments: [`ENCODER=pictalk flite-${voice}`] });
  lap('encode');
  const waveform = computeWaveform(pcm, WAVEFORM_LENGTH);
  return { ogg, durationSecs: pcm.length / OPUS_SAMPLE_RATE, waveform, timingsMs };
}

let shared: TextToSpeech | undefined;

/** Speak with the process-wide default pipeline (the Flite module compiled once and reused). */
export function speak(request: SpeakRequest, options?: RunOptions): Promise<SpeechResult> {
  shared ??= createTextToSpeech();
  return shared.speak(request, options);
}

function validateText(text: unknown, maxChars: number): string {
  if (typeof text !== 'string') {
    throw new PictalkError('input.invalid', `Expected \`text\` to be a string, got ${describe(text)}`);
  }
  // Control characters would reach Flite's text front end as garbage; speak them as spaces.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this replaces
  const cleaned = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (cleaned.length === 0) {
    throw new PictalkError('input.invalid', `Expected \`text\` to contain something to say, got ${describe(text)}`);
  }
  if (cleaned.length > maxChars) {
    throw new PictalkError('input.too_large', `Expected \`text\` to be at most ${maxChars} characters, got ${cleaned.length}`, { limit: maxChars, length: cleaned.length });
  }
  return cleaned;
}

// ---------------------------------------------------------------------------------------------------------------------
// Resampling: band-limited interpolation with a Kaiser-windowed sinc, one precomputed filter per phase.
// For a rate change L/M (reduced), output sample n sits at input position n*M/L: integer part i, phase p = n*M mod L.
// @see J. O. Smith, "Digital Audio Resampling Home Page" (ccrma.stanford.edu/~jos/resample/)
// ---------------------------------------------------------------------------------------------------------------------

const HALF_TAPS = 16;          // taps each side of the centre: 32 multiply-adds per output sample
const KAISER_BETA = 8.6;       // about 80 dB stop-band attenuation
const CUTOFF = 0.92;           // of the lower Nyquist frequency: leaves a transition band below it

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 30; k++) { term *= (x / (2 * k)) ** 2; sum += term; if (term < 1e-12 * sum) break; }
  return sum;
}

const filterCache = new Map<string, { taps: Float32Array[]; L: number; M: number; half: number }>();

function polyphaseFilters(from: number, to: number): { taps: Float32Array[]; L: number; M: number; half: number } {
  const key = `${from}:${to}`;
  const cached = filterCache.get(key);
  if (cached) return cached;
  const g = gcd(from, to);
  const L = to / g;
  const M = from / g;
  // Cut off below the lower of the two Nyquist frequencies; the kernel widens by 1/fc when downsampling.
  const fc = CUTOFF * Math.min(1, L / M);
  const half = Math.ceil(HALF_TAPS / Math.min(1, L / M));
  const i0Beta = besselI0(KAISER_BETA);
  const taps: Float32Array[] = [];
  for (let p = 0; p < L; p++) {
    const frac = p / L;                                        // output position minus input index, 0 .. 1
    const phase = new Float32Array(2 * half);
    let sum = 0;
    for (let k = 0; k < 2 * half; k++) {
      const t = k - half + 1 - frac;                           // distance from input sample (i - half + 1 + k)
      const x = fc * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = t / half;
      const window = Math.abs(w) >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - w * w)) / i0Beta;
      phase[k] = fc * sinc * window;
      sum += phase[k]!;
    }
    for (let k = 0; k < phase.length; k++) phase[k]! /= sum;  // unity gain at DC for every phase
    taps.push(phase);
  }
  const filters = { taps, L, M, half };
  filterCache.set(key, filters);
  return filters;
}

/** Resample mono float samples from one rate to another (integers, any ratio). */
export function resample(input: Float32Array, from: number, to: number): Float32Array {
  if (!Number.isInteger(from) || from <= 0 || !Number.isInteger(to) || to <= 0) {
    throw new PictalkError('input.invalid', `Expected sample rates to be positive integers, got ${describe(from)} and ${describe(to)}`);
  }
  if (from === to) return input.slice();
  const { taps, L, M, half } = polyphaseFilters(from, to);
  const outLength = Math.floor((input.length * L) / M);
  const out = new Float32Array(outLength);
  const last = input.length - 1;
  for (let n = 0; n < outLength; n++) {
    const position = n * M;
    const i = Math.floor(position / L);
    const phase = taps[position - i * L]!;
    const start = i - half + 1;
    let acc = 0;
    if (start >= 0 && start + 2 * half - 1 <= last) {
      for (let k = 0; k < phase.length; k++) acc += phase[k]! * input[start + k]!;
    } else {
      for (let k = 0; k < phase.length; k++) {
        const j = start + k;
        if (j >= 0 && j <= last) acc += phase[k]! * input[j]!;  // zeros outside the signal
      }
    }
    out[n] = acc;
  }
  return out;
}

/** Float -1..1 to 16-bit PCM. The filter can overshoot full scale slightly; those samples saturate. */
function toInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.round(samples[i]! * 32767);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

/**
 * The waveform a Discord voice message draws: `length` buckets over the clip, each the RMS level of its samples,
 * scaled so the loudest bucket is 255 (the client draws relative heights). A silent clip stays all zeros.
 */
export function computeWaveform(pcm: Int16Array, length = WAVEFORM_LENGTH): Uint8Array {
  const rms = new Float64Array(length);
  let peak = 0;
  for (let b = 0; b < length; b++) {
    const start = Math.floor((b * pcm.length) / length);
    const end = Math.max(start + 1, Math.floor(((b + 1) * pcm.length) / length));
    let sum = 0;
    let count = 0;
    for (let i = start; i < end && i < pcm.length; i++) { sum += pcm[i]! * pcm[i]!; count++; }
    rms[b] = count ? Math.sqrt(sum / count) : 0;
    if (rms[b]! > peak) peak = rms[b]!;
  }
  const waveform = new Uint8Array(length);
  if (peak < 8) return waveform;                              // below -72 dBFS: silence
  for (let b = 0; b < length; b++) waveform[b] = Math.round((255 * rms[b]!) / peak);
  return waveform;
}
