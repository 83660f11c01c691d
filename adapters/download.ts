/**
 * Download of a user's file with a byte cap, for every adapter: the reported size is checked first, then the stream is
 * counted and aborted as soon as it passes the cap, so a lying `size` or `Content-Length` never makes pictalk hold more
 * than it allows.
 */
import { PictalkError, describe } from '../common/errors.js';
import { formatBytes } from '../common/format.js';

const DOWNLOAD_TIMEOUT_MS = 20_000;

export { formatBytes };

export function tooLarge(name: string, size: number | string, maxBytes: number): PictalkError {
  const got = typeof size === 'number' ? formatBytes(size) : size;
  return new PictalkError('input.too_large', `Expected \`${name}\` to be at most ${formatBytes(maxBytes)}, got ${got}`, { maxBytes, size });
}

export function checkCap(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new PictalkError('config.invalid', `Expected \`maxBytes\` to be a positive integer, got ${describe(maxBytes)}`);
  }
}

export interface DownloadOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Looks at the answer before its body is read (a platform's sign-in page instead of the file, say); throw to refuse. */
  check?: (response: Response) => void;
}

/** GET `url` into memory, failing with `input.too_large` past `maxBytes` and `input.invalid` on a failed download. */
export async function downloadCapped(url: string, name: string, maxBytes: number, options: DownloadOptions = {}): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? DOWNLOAD_TIMEOUT_MS;
  checkCap(maxBytes);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    let response: Response;
    try {
      // fetch drops headers such as Authorization on a cross-origin redirect, so a token never leaves the platform's hosts.
      response = await fetch(url, { headers: options.headers, signal: controller.signal, redirect: 'follow' });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new PictalkError('input.invalid', `Could not download \`${name}\`: ${reason}`, {}, { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new PictalkError('input.invalid', `Expected the download of \`${name}\` to answer 200, got ${response.status}`, { status: response.status });
    }
    try {
      options.check?.(response);
    } catch (error) {
      await response.body.cancel();
      throw error;
    }
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await response.body.cancel();
      throw tooLarge(name, declared, maxBytes);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = response.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new PictalkError('input.invalid', `The download of \`${name}\` broke off: ${reason}`, {}, { cause: error });
      }
      if (chunk.done) break;
      total += chunk.value.byteLength;
      if (total > maxBytes) {
        controller.abort();
        await reader.cancel().catch(() => {});
        throw tooLarge(name, `more than that (${formatBytes(total)} so far)`, maxBytes);
      }
      chunks.push(chunk.value);
    }
    return Buffer.concat(chunks, total);
  } finally {
    clearTimeout(timer);
  }
}
