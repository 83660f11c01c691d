import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPictalkError } from '../../common/errors.js';
import { OGG_FLAG_EOS, oggPackets, readOggPages } from '../../inference/ogg-opus.js';
import { OPUS_PRE_SKIP, decodeOpus } from '../../inference/opus.codec.js';
import {
  WAVEFORM_LENGTH, computeWaveform, createTextToSpeech, resample, speak,
} from '../../inference/text-to-speech.pipeline.js';
import { decodeWav, loadTtsEngine, synthesize } from '../../inference/tts.engine.js';
import type { Progress } from '../../inference/types.js';

const CAPTION = 'A small red circle sits to the left of a big blue square today.';   // twelve words

/** opusinfo from Debian's opus-tools (a little duplication of the Ogg test's helper, to keep test files independent). */
function opusinfo(ogg: Buffer): string {
  const folder = mkdtempSync(join(tmpdir(), 'pictalk-tts-test-'));
  const path = join(folder, 'speech.ogg');
  writeFileSync(path, ogg);
  try {
    return execFileSync('opusinfo', [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('opusinfo is not installed: apt-get install -y opus-tools (.ci/run does it)');
    throw new Error(`opusinfo rejected the file:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

async function errorOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (isPictalkError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('Expected the promise to reject');
}

describe('text-to-speech pipeline', () => {
  const tts = createTextToSpeech();
  beforeAll(() => tts.load(), 30_000);

  it('speaks a caption into an Ogg Opus file that opusinfo accepts without warnings', async () => {
    const result = await tts.speak({ text: CAPTION });
    expect(result.kind).toBe('speak');
    const info = opusinfo(result.ogg);
    expect(info).not.toMatch(/WARNING|ERROR/i);
    expect(info).toContain('Channels: 1');
    expect(info).toContain('Original sample rate: 48000 Hz');
    expect(info).toContain('Packet duration:   20.0ms (max),   20.0ms (avg),   20.0ms (min)');
    const bitrate = Number(/w\/o overhead: ([\d.]+) kbit\/s/.exec(info)?.[1]);
    expect(bitrate).toBeGreaterThan(24);
    expect(bitrate).toBeLessThan(56);
  });

  it('decodes back to non-silent speech of the reported duration', async () => {
    const result = await tts.speak({ text: CAPTION });
    // A twelve-word sentence lasts a few seconds.
    expect(result.durationSecs).toBeGreaterThan(2);
    expect(result.durationSecs).toBeLessThan(8);
    const pages = readOggPages(result.ogg);
    expect(pages.every((p) => p.crcOk)).toBe(true);
    const last = pages[pages.length - 1]!;
    expect(last.flags & OGG_FLAG_EOS).toBe(OGG_FLAG_EOS);
    expect(Number(last.granulePosition) - OPUS_PRE_SKIP).toBe(Math.round(result.durationSecs * 48000));

    const pcm = decodeOpus(oggPackets(pages.slice(2))).subarray(OPUS_PRE_SKIP, OPUS_PRE_SKIP + Math.round(result.durationSecs * 48000));
    expect(pcm.length / 48000).toBeCloseTo(result.durationSecs, 3);
    let energy = 0;
    let loud = 0;
    for (const v of pcm) { energy += v * v; if (Math.abs(v) > 2000) loud++; }
    const rmsDbfs = 20 * Math.log10(Math.sqrt(energy / pcm.length) / 32768);
    expect(rmsDbfs).toBeGreaterThan(-35);       // speech, not silence or a click
    expect(loud / pcm.length).toBeGreaterThan(0.05);
  });

  it('returns a 256-value waveform that follows the speech and fits Discord (base64 of 256 bytes)', async () => {
    const result = await tts.speak({ text: CAPTION });
    expect(result.waveform).toBeInstanceOf(Uint8Array);
    expect(result.waveform.length).toBe(WAVEFORM_LENGTH);
    expect(Math.max(...result.waveform)).toBe(255);
    expect(result.waveform.filter((v) => v > 30).length).toBeGreaterThan(64);   // speech covers much of the clip
    expect(Buffer.from(Buffer.from(result.waveform).toString('base64'), 'base64').length).toBe(256); // Discord's base64 field
  });

  it('reports progress stages and timings', async () => {
    const seen: Progress[] = [];
    const result = await tts.speak({ text: 'Hello there.' }, { onProgress: (p) => seen.push(p) });
    // rendering is one message to the speech worker: a stage before it and one after
    expect(seen).toEqual([{ stage: 'synthesize', step: 0, total: 1 }, { stage: 'encode', step: 1, total: 1 }]);
    expect(Object.keys(result.timingsMs)).toEqual(['synthesize', 'resample', 'encode']);
  });

  it('speaks with every voice, and refuses an unknown one', async () => {
    for (const voice of ['kal16', 'kal']) {
      const result = await tts.speak({ text: 'One two three.', voice });
      expect(opusinfo(result.ogg)).not.toMatch(/WARNING|ERROR/i);
    }
    expect(await errorOf(tts.speak({ text: 'Hi.', voice: 'hal9000' }))).toEqual({
      code: 'input.invalid', message: expect.stringContaining('`voice` to be one of slt, kal16, rms, awb, kal, got `"hal9000"`'),
    });
  });

  it('speaks text that looks like a command-line option instead of obeying it', async () => {
    const pcm = await synthesize('-voice awb -o other.wav', 'kal16');
    expect(pcm.sampleRate).toBe(16000);
    expect(pcm.samples.length).toBeGreaterThan(16000 * 0.5);
  });

  it('refuses empty and whitespace-only text, and text over the limit', async () => {
    expect((await errorOf(tts.speak({ text: '' }))).code).toBe('input.invalid');
    expect((await errorOf(tts.speak({ text: ' \n\t ' }))).code).toBe('input.invalid');
    expect((await errorOf(tts.speak({ text: 42 as unknown as string }))).message).toContain('got `42` (number)');
    const tooLong = await errorOf(tts.speak({ text: 'a'.repeat(1001) }));
    expect(tooLong).toEqual({ code: 'input.too_large', message: 'Expected `text` to be at most 1000 characters, got 1001' });
    const small = createTextToSpeech({ maxChars: 10 });
    expect((await errorOf(small.speak({ text: 'eleven char' }))).code).toBe('input.too_large');
  });

  it('stops with job.cancelled when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    expect((await errorOf(tts.speak({ text: 'Hello.' }, { signal: controller.signal }))).code).toBe('job.cancelled');
  });

  it('compiles the engine once per process, not per request', async () => {
    await speak({ text: CAPTION });
    await speak({ text: CAPTION });
    expect(loadTtsEngine()).toBe(loadTtsEngine());
  });
});

describe('resample', () => {
  const tone = (hz: number, rate: number, seconds: number): Float32Array =>
    Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate));

  it.each([[16000], [8000], [22050], [44100]])('turns a 1 kHz tone at %i Hz into the same tone at 48 kHz', (from) => {
    const out = resample(tone(1000, from, 0.5), from, 48000);
    expect(out.length).toBe(24000);
    const ideal = tone(1000, 48000, 0.5);
    let err = 0;
    let ref = 0;
    for (let i = 2000; i < 22000; i++) { err += (out[i]! - ideal[i]!) ** 2; ref += ideal[i]! ** 2; }
    const snrDb = 10 * Math.log10(ref / err);
    expect(snrDb).toBeGreaterThan(60);
  });

  it('keeps images of a 16 kHz signal out of the 8-24 kHz band when upsampling', () => {
    const out = resample(tone(7000, 16000, 0.5), 16000, 48000);
    // Energy of the image at 16000 - 7000 = 9000 Hz, by correlation with the image frequency.
    const at = (hz: number): number => {
      let re = 0;
      let im = 0;
      for (let i = 2000; i < 22000; i++) { re += out[i]! * Math.cos((2 * Math.PI * hz * i) / 48000); im += out[i]! * Math.sin((2 * Math.PI * hz * i) / 48000); }
      return Math.hypot(re, im);
    };
    expect(20 * Math.log10(at(9000) / at(7000))).toBeLessThan(-50);
  });

  it('refuses a rate that is not a positive integer', () => {
    expect(() => resample(new Float32Array(4), 0, 48000)).toThrow(/positive integers/);
  });
});

describe('waveform and WAV decoding', () => {
  it('is all zeros for silence and 256 values for any length', () => {
    expect([...computeWaveform(new Int16Array(48000))].every((v) => v === 0)).toBe(true);
    expect(computeWaveform(new Int16Array(100).fill(1000)).length).toBe(256);
  });

  it('rises where the audio is loud', () => {
    const pcm = new Int16Array(25600);
    for (let i = 12800; i < 25600; i++) pcm[i] = i % 2 ? 10000 : -10000;
    const waveform = computeWaveform(pcm);
    expect(waveform[10]).toBe(0);
    expect(waveform[200]).toBe(255);
  });

  it('refuses a file that is not RIFF/WAVE', () => {
    expect(() => decodeWav(Buffer.from('not a wave file at all'))).toThrow(/RIFF\/WAVE/);
  });
});
