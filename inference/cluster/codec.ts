/**
 * Job inputs and results as they cross Redis: JSON, with the binary parts (a caption's image, a result's PNG or Ogg
 * bytes, a waveform, parity latents) as tagged base64, so what comes out is what went in, typed arrays and all.
 */
import { PictalkError, describe } from '../../common/errors.js';
import { JOB_KINDS } from '../core.js';
import type { JobInput, JobKind, JobResult } from '../types.js';

type Tagged = { $bytes: string; $type: 'Buffer' | 'Uint8Array' | 'Float32Array' };

/**
 * A copy of the value with every binary part tagged. Done before JSON.stringify, not in a replacer: JSON.stringify
 * calls Buffer#toJSON (a number array of every byte) before a replacer sees the value.
 */
function tag(value: unknown): unknown {
  if (value instanceof Uint8Array || value instanceof Float32Array) {
    const $type = Buffer.isBuffer(value) ? 'Buffer' : value instanceof Float32Array ? 'Float32Array' : 'Uint8Array';
    return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'), $type } satisfies Tagged;
  }
  if (Array.isArray(value)) return value.map(tag);
  if (value && typeof value === 'object') {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return value;      // a class with its own JSON form
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = tag(item);
    return copy;
  }
  return value;
}

function revive(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && typeof (value as Tagged).$bytes === 'string') {
    const { $bytes, $type } = value as Tagged;
    const bytes = Buffer.from($bytes, 'base64');
    if ($type === 'Buffer') return bytes;
    if ($type === 'Uint8Array') return new Uint8Array(bytes);
    if ($type === 'Float32Array') {
      const copy = new Uint8Array(bytes);          // aligned, since a Buffer may sit at any offset of its pool
      return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    }
  }
  return value;
}

export const encode = (value: JobInput | JobResult): string => JSON.stringify(tag(value));

export function decodeInput(text: string | null): JobInput {
  const value = text === null ? undefined : JSON.parse(text, revive) as JobInput;
  if (!value || typeof value !== 'object' || !isKind(value.kind)) {
    throw new PictalkError('inference.failed', `Expected a job input from the queue, got ${describe(value)}`);
  }
  return value;
}

export function decodeResult(text: string): JobResult {
  const value = JSON.parse(text, revive) as JobResult;
  if (!value || typeof value !== 'object' || !isKind(value.kind)) {
    throw new PictalkError('inference.failed', `Expected a job result from the queue, got ${describe(value)}`);
  }
  return value;
}

const isKind = (kind: unknown): kind is JobKind => JOB_KINDS.includes(kind as JobKind);
