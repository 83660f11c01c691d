/**
 * Encode items as they are decoded: the decodes run on their own (sharp's threads) while `encode`, on this thread,
 * takes every item decoded so far as one batch, then the next ones, until all are done. An encoder's cost grows with
 * its batch almost linearly, so a batch no longer waits for its slowest decode before encoding starts.
 */
import { isPictalkError, type PictalkError } from '../common/errors.js';

export interface EncodedAll<E> {
  /** Per item, in input order: its encoding, or the `input.*` error its decode failed with. */
  outcomes: Array<E | PictalkError>;
  /** ms (performance.now()) when the last decode had settled. */
  decodedAt: number;
  /** ms spent inside `encode` (it overlaps the decoding). */
  encodingMs: number;
}

/**
 * `decodes[i]` decodes item i; `encode(indices, decoded)` encodes the items decoded so far and returns one encoding
 * each, in the same order. A decode failing with an `input.*` PictalkError (a bad image) stays in its item's slot;
 * any other failure, or one of `encode`, rejects the whole call once every decode has settled (none left running
 * unobserved). `checkAbort` runs before each `encode` call and may throw.
 */
export async function encodeAsDecoded<D, E>(
  decodes: ReadonlyArray<Promise<D>>,
  encode: (indices: number[], decoded: D[]) => Promise<E[]>,
  checkAbort: () => void = () => undefined,
): Promise<EncodedAll<E>> {
  const outcomes: Array<E | PictalkError | undefined> = decodes.map(() => undefined);
  const decodedOf: Array<D | undefined> = decodes.map(() => undefined);
  const ready: number[] = [];
  let wake: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  let settled = 0;
  let decodedAt = 0;
  const watched = decodes.map(async (decode, i) => {
    try {
      decodedOf[i] = await decode;
      ready.push(i);
    } catch (error) {
      if (isPictalkError(error) && error.code.startsWith('input.')) outcomes[i] = error;
      else failure ??= { error };
    } finally {
      settled += 1;
      if (settled === decodes.length) decodedAt = performance.now();
      wake?.();
    }
  });
  let encodingMs = 0;
  try {
    for (;;) {
      if (failure) throw failure.error;
      if (ready.length === 0) {
        if (settled === decodes.length) break;
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
        continue;
      }
      checkAbort();
      const take = ready.splice(0, ready.length);
      const started = performance.now();
      const encoded = await encode(take, take.map((i) => decodedOf[i]!));
      encodingMs += performance.now() - started;
      take.forEach((i, j) => { outcomes[i] = encoded[j]; decodedOf[i] = undefined; });
    }
  } finally {
    await Promise.all(watched);
  }
  return { outcomes: outcomes as Array<E | PictalkError>, decodedAt: decodedAt || performance.now(), encodingMs };
}
