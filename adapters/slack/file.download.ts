/**
 * Slack files into bot/'s `Attachment`: the private download URL needs the bot token as a bearer header (scope
 * `files:read`); the reported size is checked first, then the stream is counted and aborted past the cap, so a lying
 * size never makes pictalk hold more than it allows.
 * @see https://docs.slack.dev/messaging/working-with-files#downloading_files
 */
import type { Attachment } from '../../bot/types.js';
import { PictalkError } from '../../common/errors.js';
import { checkCap, downloadCapped, formatBytes, tooLarge } from '../download.js';

export { formatBytes };

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

export const isImageFile = (file: SlackFile): boolean => (file.mimetype ?? '').toLowerCase().startsWith('image/');

export const fileName = (file: SlackFile): string => file.name ?? file.title ?? file.id;


/** GET a private Slack file into memory with the bot token, failing with `input.too_large` past `maxBytes`. */
export function downloadSlackFile(url: string, name: string, botToken: string, maxBytes: number): Promise<Buffer> {
  return downloadCapped(url, name, maxBytes, {
    headers: { Authorization: `Bearer ${botToken}` },
    check: (response) => {
      // Without a valid token (or without `files:read`) Slack answers 200 with its sign-in page instead of the file.
      const type = response.headers.get('content-type') ?? '';
      if (type.startsWith('text/html')) {
        throw new PictalkError('config.invalid', `Slack sent a web page instead of \`${name}\`: the bot token may lack the files:read scope`, { contentType: type });
      }
    },
  });
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
