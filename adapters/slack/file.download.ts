/**
 * Slack files into bot/'s `Attachment`: the private download URL needs the bot token as a bearer header (scope
 * `files:read`); the reported size is checked first, then the stream is counted and aborted past the cap, so a lying
 * size never makes pictalk hold more than it allows.
 * @see https://docs.slack.dev/messaging/working-with-files#downloading_files
 */
import type { Attachment } from '../../bot/types.js';
import { PictalkError, describe } from '../../inference/errors.js';

const DOWNLOAD_TIMEOUT_MS = 20_000;

/** The fields of a Slack file object pictalk reads (events, shortcut payloads and files.info all carry them). */
export interface SlackFile {
  id: string;
  name?: string;
  title?: string;
  mimetype?: string;
  filetype?: string;
  size?: number;
  url_private?: string;
  url_private_download?: string;
}

export const formatBytes = (bytes: number): string =>
  bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;

export const isImageFile = (file: SlackFile): boolean => (file.mimetype ?? '').toLowerCase().startsWith('image/');

export const fileName = (file: SlackFile): string => file.name ?? file.title ?? file.id;

function tooLarge(name: string, got: string, maxBytes: number): PictalkError {
  return new PictalkError('input.too_large', `Expected \`${name}\` to be at most ${formatBytes(maxBytes)}, got ${got}`, { maxBytes });
}

function checkCap(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new PictalkError('config.invalid', `Expected \`maxBytes\` to be a positive integer, got ${describe(maxBytes)}`);
  }
}

/** GET a private Slack file into memory with the bot token, failing with `input.too_large` past `maxBytes`. */
export async function downloadSlackFile(url: string, name: string, botToken: string, maxBytes: number, timeoutMs = DOWNLOAD_TIMEOUT_MS): Promise<Buffer> {
  checkCap(maxBytes);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    let response: Response;
    try {
      // fetch drops the Authorization header on a cross-origin redirect, so the token never leaves Slack's hosts.
      response = await fetch(url, { headers: { Authorization: `Bearer ${botToken}` }, signal: controller.signal, redirect: 'follow' });
    } catch (error) {
      throw new PictalkError('input.invalid', `Could not download \`${name}\` from Slack: ${(error as Error)?.message ?? String(error)}`, {}, { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new PictalkError('input.invalid', `Expected the download of \`${name}\` to answer 200, got ${response.status}`, { status: response.status });
    }
    // Without a valid token (or without `files:read`) Slack answers 200 with its sign-in page instead of the file.
    const type = response.headers.get('content-type') ?? '';
    if (type.startsWith('text/html')) {
      await response.body.cancel();
      throw new PictalkError('config.invalid', `Slack sent a web page instead of \`${name}\`: the bot token may lack the files:read scope`, { contentType: type });
    }
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await response.body.cancel();
      throw tooLarge(name, formatBytes(declared), maxBytes);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = response.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new PictalkError('input.invalid', `The download of \`${name}\` broke off: ${(error as Error)?.message ?? String(error)}`, {}, { cause: error });
      }
      if (chunk.done) break;
      total += chunk.value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        controller.abort();
        throw tooLarge(name, `more than that (${formatBytes(total)} so far)`, maxBytes);
      }
      chunks.push(chunk.value);
    }
    return Buffer.concat(chunks, total);
  } finally {
    clearTimeout(timer);
  }
}

/** bot/'s `Attachment` for a Slack file: refuses by reported size before downloading, then caps the stream. */
export function toBotAttachment(file: SlackFile, botToken: string): Attachment {
  const name = fileName(file);
  const url = file.url_private_download ?? file.url_private;
  const attachment: Attachment = {
    name,
    size: typeof file.size === 'number' ? file.size : 0,
    async fetch(maxBytes: number): Promise<Buffer> {
      checkCap(maxBytes);
      if (typeof file.size === 'number' && file.size > maxBytes) throw tooLarge(name, formatBytes(file.size), maxBytes);
      if (!url) throw new PictalkError('input.invalid', `Slack gave no download URL for \`${name}\``);
      return downloadSlackFile(url, name, botToken, maxBytes);
    },
  };
  if (file.mimetype) attachment.contentType = file.mimetype;
  if (url) attachment.url = url;
  return attachment;
}
