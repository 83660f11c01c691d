/** Discord attachments into bot/'s `Attachment`, downloaded through the shared capped download. */
import type { Attachment } from '../../bot/types.js';
import { checkCap, downloadCapped, tooLarge } from '../download.js';

export { formatBytes } from '../download.js';

/** What Discord tells about an attachment (discord.js `Attachment` fits). */
export interface DiscordAttachmentInfo {
  name: string;
  size: number;
  url: string;
  contentType: string | null;
}

/** bot/'s `Attachment` for a Discord attachment: refuses by reported size before downloading, then caps the stream. */
export function toBotAttachment(info: DiscordAttachmentInfo): Attachment {
  return {
    name: info.name,
    contentType: info.contentType ?? undefined,
    size: info.size,
    url: info.url,
    async fetch(maxBytes: number): Promise<Buffer> {
      checkCap(maxBytes);
      if (info.size > maxBytes) throw tooLarge(info.name, info.size, maxBytes);
      return downloadCapped(info.url, info.name, maxBytes);
    },
  };
}
