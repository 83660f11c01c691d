/**
 * A small Ogg writer (and reader, for checks) for one Opus stream.
 *
 * @see RFC 3533 (the Ogg page format) and RFC 7845 (Ogg encapsulation for Opus: OpusHead, OpusTags, granule positions).
 * Granule positions count 48 kHz samples and include the pre-skip; the last page's granule position marks the real
 * end of the audio, so a decoder trims the padding of the last frame.
 */
import { PictalkError, describe } from '../common/errors.js';

// ---------------------------------------------------------------------------------------------------------------------
// CRC32 as Ogg defines it: polynomial 0x04C11DB7, MSB first (not reflected), initial value 0, no final xor,
// computed over the whole page with the checksum field set to zero.
// ---------------------------------------------------------------------------------------------------------------------

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

export function oggCrc32(bytes: Uint8Array, crc = 0): number {
  let c = crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ bytes[i]!) & 0xff]!) >>> 0;
  return c >>> 0;
}

// ---------------------------------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------------------------------

export const OGG_FLAG_CONTINUED = 0x01;
export const OGG_FLAG_BOS = 0x02;
export const OGG_FLAG_EOS = 0x04;

const PAGE_HEADER_BYTES = 27;
const MAX_SEGMENTS = 255;

export interface OggPage {
  flags: number;
  /** -1 when no packet ends on this page (RFC 3533: granule position -1). */
  granulePosition: bigint;
  serial: number;
  sequence: number;
  /** Lacing values, 0..255 each. */
  segments: number[];
  body: Buffer;
}

/** Serialise one page and fill in its CRC. */
export function encodeOggPage(page: OggPage): Buffer {
  if (page.segments.length > MAX_SEGMENTS) {
    throw new PictalkError('inference.failed', `Expected at most 255 segments in an Ogg page, got ${describe(page.segments.length)}`);
  }
  const out = Buffer.alloc(PAGE_HEADER_BYTES + page.segments.length + page.body.length);
  out.write('OggS', 0, 'latin1');
  out.writeUInt8(0, 4);                                       // stream structure version
  out.writeUInt8(page.flags, 5);
  out.writeBigInt64LE(page.granulePosition, 6);
  out.writeUInt32LE(page.serial >>> 0, 14);
  out.writeUInt32LE(page.sequence >>> 0, 18);
  out.writeUInt32LE(0, 22);                                   // CRC, filled below
  out.writeUInt8(page.segments.length, 26);
  for (let i = 0; i < page.segments.length; i++) out[PAGE_HEADER_BYTES + i] = page.segments[i]!;
  page.body.copy(out, PAGE_HEADER_BYTES + page.segments.length);
  out.writeUInt32LE(oggCrc32(out), 22);
  return out;
}

/** Lacing values of one packet: 255 for every full chunk, then the remainder (0 when the length divides by 255). */
export function lacing(length: number): number[] {
  const values = new Array<number>(Math.floor(length / 255)).fill(255);
  values.push(length % 255);
  return values;
}

interface PacketToWrite {
  data: Buffer;
  /** Granule position after this packet ends. */
  granule: bigint;
}

/**
 * Lay packets out as pages. A page is closed when it would exceed 255 segments or holds `maxPacketsPerPage` packets;
 * a packet that does not fit continues on the next page (the `continued` flag), and a page where no packet ends gets
 * granule position -1. Packets flagged `ownPage` (the Opus headers) start and end their own pages, as RFC 7845 asks.
 */
function paginate(
  packets: PacketToWrite[],
  serial: number,
  firstSequence: number,
  maxPacketsPerPage: number,
  options: { bos: boolean; eos: boolean },
): Buffer[] {
  const pages: Buffer[] = [];
  let sequence = firstSequence;
  let segments: number[] = [];
  let chunks: Buffer[] = [];
  let granule = -1n;
  let packetsEnded = 0;
  let continued = false;       // the page being built begins with the rest of a packet
  const flush = (last: boolean, nextContinued: boolean): void => {
    let flags = continued ? OGG_FLAG_CONTINUED : 0;
    if (options.bos && sequence === firstSequence) flags |= OGG_FLAG_BOS;
    if (options.eos && last) flags |= OGG_FLAG_EOS;
    pages.push(encodeOggPage({ flags, granulePosition: granule, serial, sequence, segments, body: Buffer.concat(chunks) }));
    sequence++;
    segments = [];
    chunks = [];
    granule = -1n;
    packetsEnded = 0;
    continued = nextContinued;
  };
  packets.forEach((packet, index) => {
    const lace = lacing(packet.data.length);
    let offset = 0;
    for (let i = 0; i < lace.length; i++) {
      // A full page: close it; the next one is 'continued' only when this packet is split across the two.
      if (segments.length === MAX_SEGMENTS) flush(false, i > 0);
      segments.push(lace[i]!);
      chunks.push(packet.data.subarray(offset, offset + lace[i]!));
      offset += lace[i]!;
    }
    granule = packet.granule;
    packetsEnded++;
    const isLast = index === packets.length - 1;
    if (isLast || packetsEnded >= maxPacketsPerPage) flush(isLast, false);
  });
  return pages;
}

// ---------------------------------------------------------------------------------------------------------------------
// Ogg Opus
// ---------------------------------------------------------------------------------------------------------------------

export interface OggOpusInput {
  /** Opus packets in order, each one frame of `frameSamples` samples at 48 kHz. */
  packets: Buffer[];
  frameSamples: number;
  /** Samples to drop at the start (the encoder's lookahead), in 48 kHz samples. */
  preSkip: number;
  /** Samples of real audio after the pre-skip; the last page's granule position trims the rest. */
  totalSamples: number;
  /** The sample rate of the audio before encoding, for the header only. */
  inputSampleRate: number;
  channels?: 1 | 2;
  vendor: string;
  comments?: string[];
  /** Bitstream serial number; random when absent. */
  serial?: number;
  /** Packets per page; 50 frames of 20 ms make one-second pages, good for seeking. */
  maxPacketsPerPage?: number;
}

/** The 19-byte identification header, RFC 7845 section 5.1 (channel mapping family 0). */
export function opusHead(channels: number, preSkip: number, inputSampleRate: number): Buffer {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'latin1');
  head.writeUInt8(1, 8);                                      // version
  head.writeUInt8(channels, 9);
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(inputSampleRate, 12);
  head.writeInt16LE(0, 16);                                   // output gain, Q7.8 dB
  head.writeUInt8(0, 18);                                     // mapping family 0: mono or stereo
  return head;
}

/** The comment header, RFC 7845 section 5.2. */
export function opusTags(vendor: string, comments: string[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from('OpusTags', 'latin1')];
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const vendorBytes = Buffer.from(vendor, 'utf8');
  parts.push(u32(vendorBytes.length), vendorBytes, u32(comments.length));
  for (const comment of comments) {
    const bytes = Buffer.from(comment, 'utf8');
    parts.push(u32(bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

/** Write a complete Ogg Opus file: OpusHead page, OpusTags page(s), audio pages, end-of-stream on the last. */
export function writeOggOpus(input: OggOpusInput): Buffer {
  const channels = input.channels ?? 1;
  const perPage = input.maxPacketsPerPage ?? 50;
  const check = (name: string, value: number, ok: boolean, expected: string): void => {
    if (!ok) throw new PictalkError('inference.failed', `Expected \`${name}\` to be ${expected}, got ${describe(value)}`);
  };
  check('preSkip', input.preSkip, Number.isInteger(input.preSkip) && input.preSkip >= 0 && input.preSkip <= 0xffff, 'an integer from 0 to 65535');
  check('frameSamples', input.frameSamples, [120, 240, 480, 960, 1920, 2880].includes(input.frameSamples), 'an Opus frame size at 48 kHz (120 .. 2880)');
  check('packets.length', input.packets.length, input.packets.length > 0, 'at least one audio packet');
  const encoded = input.packets.length * input.frameSamples;
  check('totalSamples', input.totalSamples,
    Number.isInteger(input.totalSamples) && input.totalSamples >= 0 && input.totalSamples + input.preSkip <= encoded,
    `an integer from 0 to ${encoded - input.preSkip} (the encoded samples less the pre-skip)`);

  const serial = input.serial ?? Math.floor(Math.random() * 0x100000000);
  const headPages = paginate([{ data: opusHead(channels, input.preSkip, input.inputSampleRate), granule: 0n }], serial, 0, 1, { bos: true, eos: false });
  const tagPages = paginate([{ data: opusTags(input.vendor, input.comments), granule: 0n }], serial, headPages.length, 1, { bos: false, eos: false });

  // Granule position after packet i: pre-skip + samples so far, the last one cut to the real end (RFC 7845 section 4).
  const end = BigInt(input.preSkip + input.totalSamples);
  const audio: PacketToWrite[] = input.packets.map((data, i) => {
    const after = BigInt((i + 1) * input.frameSamples);
    return { data, granule: i === input.packets.length - 1 ? end : (after < end ? after : end) };
  });
  const audioPages = paginate(audio, serial, headPages.length + tagPages.length, perPage, { bos: false, eos: true });
  return Buffer.concat([...headPages, ...tagPages, ...audioPages]);
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading, for tests and self-checks: pages with CRC verified, and packets reassembled across pages.
// ---------------------------------------------------------------------------------------------------------------------

export interface ParsedOggPage extends OggPage {
  crcOk: boolean;
}

export function readOggPages(file: Buffer): ParsedOggPage[] {
  const pages: ParsedOggPage[] = [];
  let offset = 0;
  while (offset < file.length) {
    if (file.toString('latin1', offset, offset + 4) !== 'OggS') {
      throw new PictalkError('input.invalid', `Expected an Ogg page at byte ${offset}, got ${describe(file.toString('latin1', offset, offset + 4))}`);
    }
    const count = file.readUInt8(offset + 26);
    const segments = [...file.subarray(offset + PAGE_HEADER_BYTES, offset + PAGE_HEADER_BYTES + count)];
    const bodyLength = segments.reduce((a, b) => a + b, 0);
    const total = PAGE_HEADER_BYTES + count + bodyLength;
    const raw = Buffer.from(file.subarray(offset, offset + total));
    const stored = raw.readUInt32LE(22);
    raw.writeUInt32LE(0, 22);
    pages.push({
      flags: file.readUInt8(offset + 5),
      granulePosition: file.readBigInt64LE(offset + 6),
      serial: file.readUInt32LE(offset + 14),
      sequence: file.readUInt32LE(offset + 18),
      segments,
      body: file.subarray(offset + PAGE_HEADER_BYTES + count, offset + total),
      crcOk: oggCrc32(raw) === stored,
    });
    offset += total;
  }
  return pages;
}

/** Reassemble packets from pages (a lacing value under 255 ends a packet). */
export function oggPackets(pages: OggPage[]): Buffer[] {
  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  for (const page of pages) {
    let offset = 0;
    for (const value of page.segments) {
      pending.push(page.body.subarray(offset, offset + value));
      offset += value;
      if (value < 255) { packets.push(Buffer.concat(pending)); pending = []; }
    }
  }
  return packets;
}
