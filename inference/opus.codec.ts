/**
 * The one module that owns opusscript (libopus 1.4 compiled to WebAssembly, MIT / BSD).
 * Encodes 48 kHz mono 16-bit PCM into 20 ms Opus packets, and decodes packets back (for checks and tests).
 */
import { createRequire } from 'node:module';
import { PictalkError, describe } from '../common/errors.js';

// opusscript is CommonJS with `export =` typings; load it through require so ESM and Jest agree on its shape.
type OpusScriptInstance = {
  encode(buffer: Buffer, frameSize: number): Buffer;
  decode(buffer: Buffer): Buffer;
  setBitrate(bitrate: number): void;
  encoderCTL(ctl: number, arg: number): void;
  delete(): void;
};
type OpusScriptClass = {
  new (rate: 48000, channels: number, application: number): OpusScriptInstance;
  Application: { VOIP: number; AUDIO: number };
};
const OpusScript = createRequire(import.meta.url)('opusscript') as OpusScriptClass;

export const OPUS_SAMPLE_RATE = 48000;
/** 20 ms at 48 kHz: the frame size Discord and most VoIP use. */
export const OPUS_FRAME_SAMPLES = 960;
/**
 * The encoder's lookahead at 48 kHz for the VOIP and AUDIO applications: Fs/400 (2.5 ms) + Fs/250 (4 ms delay
 * compensation) = 120 + 192 = 312 samples, what libopus' OPUS_GET_LOOKAHEAD reports and opusenc writes as pre-skip.
 * opusscript cannot return CTL values, so it is a constant here; tests measure the delay of a decoded signal.
 */
export const OPUS_PRE_SKIP = 312;
/** The libopus version inside opusscript 0.1.x, for the OpusTags vendor string. */
export const OPUS_VENDOR = 'libopus 1.4 (opusscript)';

const OPUS_SET_COMPLEXITY = 4010;
const OPUS_SET_SIGNAL = 4024;
const OPUS_SIGNAL_VOICE = 3001;

export interface OpusEncodeOptions {
  /** Bits per second, 6000 .. 510000; 32-48 kbps is plenty for mono speech. */
  bitrate?: number;
  application?: 'voip' | 'audio';
  /** 0 .. 10; lower is faster. */
  complexity?: number;
}

export interface EncodedOpus {
  packets: Buffer[];
  frameSamples: number;
  preSkip: number;
  /** Samples of real audio (the input length), without pre-skip or padding. */
  totalSamples: number;
}

/**
 * Encode mono 48 kHz PCM. The input is padded at the end with silence so that the last real sample leaves the
 * encoder's lookahead too: frames cover preSkip + samples.
 */
export function encodeOpus(pcm: Int16Array, options: OpusEncodeOptions = {}): EncodedOpus {
  const bitrate = options.bitrate ?? 40000;
  const complexity = options.complexity ?? 5;
  if (!Number.isInteger(bitrate) || bitrate < 6000 || bitrate > 510000) {
    throw new PictalkError('input.invalid', `Expected \`bitrate\` to be an integer from 6000 to 510000, got ${describe(bitrate)}`);
  }
  if (!Number.isInteger(complexity) || complexity < 0 || complexity > 10) {
    throw new PictalkError('input.invalid', `Expected \`complexity\` to be an integer from 0 to 10, got ${describe(complexity)}`);
  }
  const application = options.application === 'audio' ? OpusScript.Application.AUDIO : OpusScript.Application.VOIP;
  const encoder = new OpusScript(OPUS_SAMPLE_RATE, 1, application);
  try {
    encoder.setBitrate(bitrate);
    encoder.encoderCTL(OPUS_SET_COMPLEXITY, complexity);
    encoder.encoderCTL(OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE);
    const frames = Math.max(1, Math.ceil((pcm.length + OPUS_PRE_SKIP) / OPUS_FRAME_SAMPLES));
    const padded = new Int16Array(frames * OPUS_FRAME_SAMPLES);
    padded.set(pcm);
    // opusscript copies the frame's bytes into its heap; a Buffer view over the Int16 data, little-endian as on x86/ARM.
    const bytes = Buffer.from(padded.buffer, padded.byteOffset, padded.byteLength);
    const packets: Buffer[] = [];
    const frameBytes = OPUS_FRAME_SAMPLES * 2;
    for (let f = 0; f < frames; f++) {
      packets.push(encoder.encode(bytes.subarray(f * frameBytes, (f + 1) * frameBytes), OPUS_FRAME_SAMPLES));
    }
    return { packets, frameSamples: OPUS_FRAME_SAMPLES, preSkip: OPUS_PRE_SKIP, totalSamples: pcm.length };
  } finally {
    encoder.delete();
  }
}

/** Decode packets into one 48 kHz mono PCM array (pre-skip not removed). */
export function decodeOpus(packets: Buffer[]): Int16Array {
  const decoder = new OpusScript(OPUS_SAMPLE_RATE, 1, OpusScript.Application.AUDIO);
  try {
    const parts = packets.map((packet) => {
      const out = decoder.decode(packet);
      return new Int16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
    });
    const pcm = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) { pcm.set(part, offset); offset += part.length; }
    return pcm;
  } finally {
    decoder.delete();
  }
}
