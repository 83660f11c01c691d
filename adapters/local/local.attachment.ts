/** A file on disk as a bot/ Attachment: size from stat, type from the extension, reading capped at `maxBytes`. */
import { open, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { PictalkError } from '../../common/errors.js';
import type { Attachment } from '../../bot/types.js';

const TYPES: Record<string, string> = {
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif',
  '.svg': 'image/svg+xml', '.bmp': 'image/bmp', '.txt': 'text/plain', '.pdf': 'application/pdf',
};

export async function fileAttachment(path: string): Promise<Attachment> {
  const info = await stat(path);
  if (!info.isFile()) throw new PictalkError('input.invalid', `Expected a file, got the directory \`${path}\``);
  const attachment: Attachment = {
    name: basename(path),
    size: info.size,
    url: path,
    async fetch(maxBytes: number): Promise<Buffer> {
      // Read at most maxBytes + 1: one byte more than allowed is enough to know the file is too large.
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.alloc(Math.min(maxBytes + 1, info.size + 1));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
        return buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    },
  };
  const type = TYPES[extname(path).toLowerCase()];
  if (type !== undefined) attachment.contentType = type;
  return attachment;
}
