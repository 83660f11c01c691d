/**
 * NumPy .npy files of float32 in C order: read (latents given to the CLI, test fixtures) and write.
 * @see https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { PictalkError, describe } from '../common/errors.js';

export interface NpyArray {
  data: Float32Array;
  shape: number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Parse a float32 C-order .npy buffer. `expectedShape` entries of -1 match any size.
 * Throws `input.invalid` naming `source` for anything else (another dtype, Fortran order, a wrong shape).
 */
export function readNpy(buffer: Uint8Array, source = 'the .npy file', expectedShape?: readonly number[]): NpyArray {
  const fail = (message: string) => new PictalkError('input.invalid', `${source}: ${message}`, { path: source });
  if (buffer.length < 10 || MAGIC.some((byte, i) => buffer[i] !== byte)) throw fail('expected a NumPy .npy file (magic \\x93NUMPY), got other bytes');
  const major = buffer[6]!;
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) { headerLength = view.getUint16(8, true); headerStart = 10; }
  else if (major === 2 || major === 3) { headerLength = view.getUint32(8, true); headerStart = 12; }
  else throw fail(`expected .npy format version 1, 2 or 3, got ${describe(major)}`);
  if (headerStart + headerLength > buffer.length) throw fail('the header runs past the end of the file');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buffer.subarray(headerStart, headerStart + headerLength));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  if (descr !== '<f4') throw fail(`expected dtype float32 little-endian ('<f4'), got ${describe(descr)}`);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  if (fortran !== 'False') throw fail(`expected C order (fortran_order False), got ${describe(fortran)}`);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) throw fail(`expected a shape in the header, got ${describe(header)}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw fail(`expected a shape of non-negative integers, got ${describe(shapeText)}`);
  if (expectedShape && (expectedShape.length !== shape.length || expectedShape.some((d, i) => d !== -1 && d !== shape[i]))) {
    throw fail(`expected shape [${expectedShape.map((d) => (d === -1 ? '*' : d)).join(', ')}], got [${shape.join(', ')}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLength;
  if (buffer.length - dataStart !== count * 4) {
    throw fail(`expected ${count * 4} data bytes for shape [${shape.join(', ')}], got ${buffer.length - dataStart}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(dataStart + 4 * i, true);
  return { data, shape };
}

/** Encode float32 data as a version 1.0 .npy file in C order. */
export function writeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new PictalkError('input.invalid', `Expected ${count} values for shape [${shape.join(', ')}], got ${data.length}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // total header a multiple of 64 bytes
  const out = Buffer.alloc(10 + header.length + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i]!, 10 + header.length + 4 * i);
  return out;
}
