import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  OGG_FLAG_BOS, OGG_FLAG_CONTINUED, OGG_FLAG_EOS, encodeOggPage, lacing, oggCrc32, oggPackets, readOggPages, writeOggOpus,
} from '../../inference/ogg-opus.js';
import { OPUS_FRAME_SAMPLES, OPUS_PRE_SKIP, OPUS_VENDOR, decodeOpus, encodeOpus } from '../../inference/opus.codec.js';

/** Run opusinfo (Debian package opus-tools) and return its output; fails the test when it warns or exits non-zero. */
function opusinfo(ogg: Buffer): string {
  const folder = mkdtempSync(join(tmpdir(), 'pictalk-ogg-test-'));
  const path = join(folder, 'clip.ogg');
  writeFileSync(path, ogg);
  try {
    const output = execFileSync('opusinfo', [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return output;
  } catch (error) {
    const e = error as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('opusinfo is not installed: apt-get install -y opus-tools (.ci/run does it)');
    throw new Error(`opusinfo rejected the file:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function sine(samples: number, hz: number, amplitude = 8000, rate = 48000): Int16Array {
  const out = new Int16Array(samples);
  for (let i = 0; i < samples; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

describe('Ogg CRC32', () => {
  it('matches the CRC-32 (poly 0x04C11DB7, init 0, unreflected) check value for "123456789"', () => {
    expect(oggCrc32(Buffer.from('123456789'))).toBe(0x89a1897f);
  });

  it('reproduces the checksum of a real page written by opusenc (libopusenc 0.2.1)', () => {
    // The OpusHead page of `opusenc --serial 1234` on a 48 kHz mono file: pre-skip 312, input rate 48000.
    const page = Buffer.from('4f67675300020000000000000000d2040000000000003959425801134f707573486561640101380180bb0000000000', 'hex');
    const stored = page.readUInt32LE(22);
    const zeroed = Buffer.from(page);
    zeroed.writeUInt32LE(0, 22);
    expect(oggCrc32(zeroed)).toBe(stored);
    const [parsed] = readOggPages(page);
    expect(parsed!.crcOk).toBe(true);
    // and our page encoder writes the very same bytes for the same fields
    expect(encodeOggPage({ flags: parsed!.flags, granulePosition: 0n, serial: 1234, sequence: 0, segments: [19], body: parsed!.body })).toEqual(page);
  });

  it('notices a single flipped bit', () => {
    const page = encodeOggPage({ flags: 0, granulePosition: 960n, serial: 7, sequence: 3, segments: [3], body: Buffer.from([1, 2, 3]) });
    page[page.length - 1] = page[page.length - 1]! ^ 0x01;
    expect(readOggPages(page)[0]!.crcOk).toBe(false);
  });
});

describe('Ogg lacing and pages', () => {
  it('laces packets with 255s and a terminating value, a zero after an exact multiple', () => {
    expect(lacing(0)).toEqual([0]);
    expect(lacing(100)).toEqual([100]);
    expect(lacing(255)).toEqual([255, 0]);
    expect(lacing(600)).toEqual([255, 255, 90]);
  });

  it('splits a packet larger than one page across pages with the continued flag and granule -1', () => {
    const big = Buffer.alloc(255 * 300, 7);      // needs 301 lacing values: more than one page holds
    const small = Buffer.alloc(10, 1);
    const file = writeOggOpus({
      packets: [small, big, small], frameSamples: 960, preSkip: 312, totalSamples: 3 * 960 - 312,
      inputSampleRate: 48000, vendor: 'test', serial: 42,
    });
    const pages = readOggPages(file);
    expect(pages.every((p) => p.crcOk && p.serial === 42)).toBe(true);
    expect(pages.map((p) => p.sequence)).toEqual(pages.map((_, i) => i));
    const audio = pages.slice(2);
    expect(audio.length).toBe(2);
    expect(audio[0]!.segments.length).toBe(255);
    expect(audio[0]!.granulePosition).toBe(960n);                // only the small packet ends on the first page
    expect(audio[1]!.flags & OGG_FLAG_CONTINUED).toBe(OGG_FLAG_CONTINUED);
    expect(audio[1]!.flags & OGG_FLAG_EOS).toBe(OGG_FLAG_EOS);
    expect(audio[1]!.granulePosition).toBe(3n * 960n);
    const packets = oggPackets(audio);
    expect(packets.length).toBe(3);
    expect([packets[0]!.equals(small), packets[1]!.equals(big), packets[2]!.equals(small)]).toEqual([true, true, true]);
  });

  it('gives a page where no packet ends the granule position -1', () => {
    const huge = Buffer.alloc(255 * 600, 3);
    const pages = readOggPages(writeOggOpus({
      packets: [huge], frameSamples: 960, preSkip: 0, totalSamples: 960, inputSampleRate: 48000, vendor: 'v', serial: 1,
    })).slice(2);
    expect(pages.map((p) => p.granulePosition)).toEqual([-1n, -1n, 960n]);
    expect(pages.map((p) => p.flags)).toEqual([0, OGG_FLAG_CONTINUED, OGG_FLAG_CONTINUED | OGG_FLAG_EOS]);
  });

  it('refuses an end position past the encoded audio', () => {
    expect(() => writeOggOpus({
      packets: [Buffer.alloc(3)], frameSamples: 960, preSkip: 312, totalSamples: 960, inputSampleRate: 48000, vendor: 'v',
    })).toThrow(/totalSamples.*from 0 to 648/);
  });
});

describe('Ogg Opus files', () => {
  const pcm = sine(48000, 440);                  // one second
  const encoded = encodeOpus(pcm, { bitrate: 32000 });
  const file = writeOggOpus({ ...encoded, inputSampleRate: 48000, vendor: OPUS_VENDOR, comments: ['TITLE=test'], serial: 99 });
  const pages = readOggPages(file);

  it('starts with OpusHead alone on a BOS page and OpusTags on the next, as RFC 7845 asks', () => {
    expect(pages[0]!.flags).toBe(OGG_FLAG_BOS);
    expect(pages[0]!.body.toString('latin1', 0, 8)).toBe('OpusHead');
    expect(pages[0]!.body.readUInt16LE(10)).toBe(OPUS_PRE_SKIP);
    expect(pages[0]!.body.readUInt32LE(12)).toBe(48000);
    expect(pages[0]!.granulePosition).toBe(0n);
    expect(pages[1]!.body.toString('latin1', 0, 8)).toBe('OpusTags');
    expect(pages[1]!.body.toString('utf8', 12, 12 + pages[1]!.body.readUInt32LE(8))).toBe(OPUS_VENDOR);
    expect(pages[1]!.granulePosition).toBe(0n);
  });

  it('counts granule positions in 48 kHz samples with the pre-skip, ending at pre-skip + length', () => {
    const audio = pages.slice(2);
    const last = audio[audio.length - 1]!;
    expect(last.flags & OGG_FLAG_EOS).toBe(OGG_FLAG_EOS);
    expect(last.granulePosition).toBe(BigInt(OPUS_PRE_SKIP + pcm.length));
    let packetsSoFar = 0;
    for (const page of audio.slice(0, -1)) {
      packetsSoFar += page.segments.filter((s) => s < 255).length;
      expect(page.granulePosition).toBe(BigInt(packetsSoFar * OPUS_FRAME_SAMPLES));
    }
    expect(audio.every((p) => p.crcOk)).toBe(true);
  });

  it('is accepted by opusinfo without warnings, with the right length and pre-skip', () => {
    const info = opusinfo(file);
    expect(info).not.toMatch(/WARNING|ERROR/i);
    expect(info).toContain('Pre-skip: 312');
    expect(info).toContain('Original sample rate: 48000 Hz');
    expect(info).toMatch(/Playback length: 0m:01\.000s/);
  });

  it('round-trips through the decoder with a delay of the pre-skip', () => {
    // Broadband input (smoothed noise): a pure tone would let the codec's phase response blur the lag.
    let seed = 1;
    let y = 0;
    const noise = new Int16Array(48000).map(() => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      y = 0.6 * y + 0.4 * (seed / 2 ** 32 - 0.5);
      return Math.round(20000 * y);
    });
    const opus = encodeOpus(noise, { bitrate: 48000 });
    const decoded = decodeOpus(oggPackets(readOggPages(writeOggOpus({ ...opus, inputSampleRate: 48000, vendor: 'v' })).slice(2)));
    expect(decoded.length).toBe(opus.packets.length * OPUS_FRAME_SAMPLES);
    // The lag that best aligns decoded with the input is the encoder's lookahead.
    const lagScore = (lag: number): number => {
      let dot = 0;
      for (let i = 2000; i < 40000; i++) dot += decoded[i + lag]! * noise[i]!;
      return dot;
    };
    const lags = Array.from({ length: 200 }, (_, i) => 250 + i);
    const best = lags.reduce((a, b) => (lagScore(b) > lagScore(a) ? b : a));
    expect(Math.abs(best - OPUS_PRE_SKIP)).toBeLessThanOrEqual(1);
  });
});
