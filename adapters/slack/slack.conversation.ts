/**
 * bot/'s `Conversation` for one Slack request. Status: one message (posted on the first update, then edited with
 * chat.update, throttled, with a Cancel button). Final reply:
 * - public, no thread given (`/imagine`, re-roll): the status message becomes the anchor ("Done" + Re-roll/Delete
 *   buttons) and the images go into ITS thread through the v2 upload, with the settings text as the comment;
 * - public, in a thread (captions: the image's own thread): the status message becomes the caption text (+ Delete),
 *   and the spoken caption goes into the same thread as `voice-message.ogg`;
 * - silent replies (auto-captioning declined the picture): the status message is removed, nothing is sent; a job that
 *   another front of a cluster answers (`answeredElsewhere`): nothing is sent, the status message is left to it;
 * - errors and ephemeral replies: the status message is removed and the requester alone gets the text, through the
 *   interaction's response_url (`respond`) or chat.postEphemeral for events;
 * - private replies (the requester's setting): no status message; a job not done soon gets one ephemeral note with its
 *   state, before the reply (an ephemeral message cannot be edited).
 * @see https://docs.slack.dev/messaging/working-with-files#uploading_files
 */
import type { Logger } from '../../common/logger.js';
import type { RespondFn, types, webApi } from '@slack/bolt';
import type { Conversation, FinishReceipt, JobStatus, Reply, ReplyButton } from '../../bot/types.js';
import { buttonValue } from '../../bot/buttons.js';
import { formatBytes } from './file.download.js';
import { StatusThrottle } from '../status-throttle.js';

type WebClient = webApi.WebClient;

/** Logs as `(message, fields)`; `console` fits (common/logger.ts). */
export type { Logger };

/** Where one request's messages go. */
export interface SlackTarget {
  channelId: string;
  /** The requester: ephemeral messages go to them alone. */
  userId: string;
  /** Reply inside this thread (captions: the ts of the image's message); a new top-level status message otherwise. */
  threadTs?: string;
  /** The interaction's response_url (commands, shortcuts, buttons); chat.postEphemeral is used without it. */
  respond?: RespondFn;
  /** The same response_url as text, kept in the job's route (it works for 30 minutes, from any process). */
  responseUrl?: string;
  /** For a button press: the message the button sits on (removed with the job's messages on `delete`). */
  buttonMessage?: { channelId: string; ts: string };
}

export const ACTION_PREFIX = 'pictalk.';
export const VOICE_FILE_NAME = 'voice-message.ogg';
const MAX_SECTION = 3000;      // a section block's text, characters
const PREVIEW_FILE_NAME = 'preview.png';
const MAX_ALT_TEXT = 1000;     // files.getUploadURLExternal alt_text, characters
const MAX_TITLE = 250;
const MAX_FILE_BYTES = 1024 * 1024 * 1024;   // Slack's per-file upload limit (1 GB)

/** Cut visibly (with an ellipsis) rather than let Slack reject the whole message. */
const cut = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/**
 * bot/ writes Markdown-ish text (`**bold**`); Slack's mrkdwn wants `*bold*` and `&`, `<`, `>` escaped, or a `<` in a
 * prompt would start a link. @see https://docs.slack.dev/messaging/formatting-message-text#escaping
 */
export function toMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\*\*(.+?)\*\*/g, '*$1*');
}

export function renderStatus(update: JobStatus): string {
  if (update.state === 'queued') return `⏳ Queued — position ${update.position}`;
  if (update.total > 1) return `🎨 Step ${update.step}/${update.total} · ${update.stage}`;
  return `🎨 Working: ${update.stage}…`;
}

type Block = types.KnownBlock;

/** bot/'s `{ action, jobId, index? }` as a Slack button: `action_id: pictalk.<action>[.<n>]`, `value: <jobId>[#<n>]`. */
export function buttonElement(button: ReplyButton): types.Button {
  const element: types.Button = {
    type: 'button',
    // action ids must differ within a block: a per-image button (Vary) adds its image number
    action_id: `${ACTION_PREFIX}${button.action}${button.index !== undefined ? `.${button.index}` : ''}`,
    text: { type: 'plain_text', text: cut(button.label, 75) },
    value: buttonValue(button),
  };
  // Block Kit has no "secondary" style: leaving it out is the default grey button.
  if (button.style !== 'secondary') element.style = button.style;
  return element;
}

export function messageBlocks(mrkdwn: string, buttons: readonly ReplyButton[] = []): Block[] {
  const blocks: Block[] = [{ type: 'section', text: { type: 'mrkdwn', text: cut(mrkdwn, MAX_SECTION) } }];
  // At most 25 elements per actions block.
  if (buttons.length > 0) blocks.push({ type: 'actions', block_id: 'pictalk_buttons', elements: buttons.slice(0, 25).map(buttonElement) });
  return blocks;
}

interface MessageRef { channel: string; ts: string }

/** Receipt ids: `msg:<channel>:<ts>` for messages (chat.delete), `file:<id>` for uploads (files.delete). */
const messageId = (ref: MessageRef): string => `msg:${ref.channel}:${ref.ts}`;

/** Slack platform errors carry the API's error string in `data.error`. */
export const slackError = (error: unknown): string | undefined =>
  (error as { data?: { error?: unknown } })?.data?.error as string | undefined;

export interface ConversationOptions {
  client: WebClient;
  statusIntervalMs: number;
  logger: Logger;
  requestId: string;
  /**
   * The requester's private-replies setting is on: no public status message, the reply goes to them alone (its text
   * ephemerally; images and voice, which an ephemeral message cannot carry, into their direct message with the app).
   * A job still waiting or running two status intervals after its first status gets one ephemeral note with its
   * state, so the requester knows it is under way.
   */
  privately?: boolean;
}

export class SlackConversation implements Conversation {
  private readonly throttle: StatusThrottle<JobStatus>;
  private statusMessage: MessageRef | null = null;
  /** The live preview the status message shows (a Slack file id), the PNG last uploaded, and whether previews failed. */
  private previewFile: string | undefined;
  private previewSent: Buffer | undefined;
  private previewsOff = false;
  private finishing = false;
  private routeListener: ((route: Record<string, unknown>) => void) | undefined;
  /** Private replies: the latest state, the timer of the one note, and the note once it is on its way. */
  private privateState: JobStatus | undefined;
  private privateTimer: NodeJS.Timeout | undefined;
  private privateNote: Promise<void> | undefined;

  constructor(private target: SlackTarget, private readonly options: ConversationOptions) {
    this.throttle = new StatusThrottle<JobStatus>(
      (update) => this.sendStatus(update),
      options.statusIntervalMs,
      (error) => options.logger.warn('slack: a status update failed', { request: options.requestId, error: slackError(error) ?? String(error) }),
    );
  }

  /** How another process reaches the requester: the channel, the thread, the response_url. */
  route(): Record<string, unknown> {
    const { channelId, userId, threadTs, responseUrl } = this.target;
    return {
      platform: 'slack', channelId, userId, ...(threadTs ? { threadTs } : {}), ...(responseUrl ? { responseUrl } : {}),
      // the status message, once posted: a front that takes the job over edits it instead of posting another
      ...(this.statusMessage ? { status: { channel: this.statusMessage.channel, ts: this.statusMessage.ts } } : {}),
    };
  }

  watchRoute(listener: (route: Record<string, unknown>) => void): void {
    this.routeListener = listener;
  }

  /** A status message taken over from the route of a job another front started. */
  adoptStatusMessage(message: MessageRef): void {
    this.statusMessage = message;
  }

  get finished(): boolean {
    return this.finishing;
  }

  status(update: JobStatus): void {
    if (this.finishing) return;
    if (this.options.privately) this.notePrivately(update);
    else this.throttle.push(update);
  }

  /**
   * Private replies have no status message to edit (an ephemeral message cannot be edited): a job that is not done
   * soon gets one ephemeral note with its latest state instead, and nothing after it but the reply.
   */
  private notePrivately(update: JobStatus): void {
    if (this.privateNote) return;
    this.privateState = update;
    if (this.privateTimer) return;
    this.privateTimer = setTimeout(() => {
      this.privateTimer = undefined;
      if (this.finishing || this.privateNote || !this.privateState) return;
      const text = `${renderStatus(this.privateState)}\n🔒 Your replies are private, so only you will see the result.`;
      this.privateNote = this.sendEphemeral(text).catch((error: unknown) =>
        this.options.logger.warn('slack: could not send the private progress note', { request: this.options.requestId, error: slackError(error) ?? String(error) }));
    }, 2 * this.options.statusIntervalMs);
    this.privateTimer.unref();
  }

  async finish(reply: Reply): Promise<FinishReceipt> {
    if (this.finishing) {
      this.options.logger.warn('slack: finish called twice; the second reply is dropped', { request: this.options.requestId, text: reply.text });
      return { messageIds: [] };
    }
    this.finishing = true;
    // No status edit may land after the final one: stop the throttle and wait for an edit already on the wire (and
    // for a private note already on its way, so the reply comes after it).
    if (this.privateTimer) clearTimeout(this.privateTimer);
    this.privateTimer = undefined;
    await this.throttle.close();
    await this.privateNote;
    const final = reply.action?.kind === 'delete' && !reply.error ? await this.deleteMessages(reply, reply.action.messageIds) : reply;
    // another front answers this job, in the status message both may show: leave that message to it
    if (final.silent && final.answeredElsewhere && !final.error) {
      this.statusMessage = null;
      await this.dropPreview();
      return { messageIds: [] };
    }
    // nothing to say (auto-captioning declined the picture): the thread keeps no trace of pictalk
    if (final.silent && !final.error) {
      await this.removeStatus();
      await this.dropPreview();
      return { messageIds: [] };
    }
    if (final.error || final.ephemeral) {
      await this.removeStatus();
      await this.dropPreview();
      if (!final.error && (final.images?.length || final.voice)) return { messageIds: await this.sendToDirectMessage(final) };
      await this.sendEphemeral(final.error ? `⚠️ ${final.text}` : final.text);
      return { messageIds: [] };
    }
    try {
      const messageIds = await this.sendPublic(final);
      await this.dropPreview();                  // the reply replaced the status message and its preview
      return { messageIds };
    } catch (error) {
      await this.dropPreview();
      // A channel the app is not in: tell the requester what to do instead of failing silently.
      const code = slackError(error);
      if (code === 'not_in_channel' || code === 'channel_not_found') {
        await this.sendEphemeral('⚠️ pictalk cannot post in this channel. Invite it first (`/invite @pictalk`), then try again.')
          .catch(() => undefined);
      }
      throw error;
    }
  }

  private async sendStatus(update: JobStatus): Promise<void> {
    if (this.finishing) return;
    const text = renderStatus(update);
    const blocks = messageBlocks(text, [{ action: 'cancel', jobId: update.jobId, label: 'Cancel', style: 'secondary' }]);
    const preview = update.state === 'running' ? update.preview : undefined;
    const replaced = preview && preview.png !== this.previewSent && !this.previewsOff ? await this.uploadPreview(preview.png) : undefined;
    // the live preview: an image block showing the uploaded file, between the progress text and the Cancel button
    if (this.previewFile) blocks.splice(1, 0, { type: 'image', slack_file: { id: this.previewFile }, alt_text: 'A rough preview of the picture as it forms' });
    try {
      await this.upsert(text, blocks);
      if (replaced) await this.deleteFile(replaced);   // the message no longer shows it
    } catch (error) {
      if (replaced) await this.deleteFile(replaced);
      if (!this.previewFile || slackError(error) !== 'invalid_blocks') throw error;
      // Slack would not show the preview (the file not processed yet, or not visible here): go on without previews
      this.previewsOff = true;
      await this.dropPreview();
      await this.upsert(text, messageBlocks(text, [{ action: 'cancel', jobId: update.jobId, label: 'Cancel', style: 'secondary' }]));
    }
  }

  /**
   * A live preview goes up as a private file (shared in no channel) that the status message shows through an image
   * block's `slack_file`; the one it replaces is deleted, and the last one once the reply is out.
   */
  private async uploadPreview(png: Buffer): Promise<string | undefined> {
    this.previewSent = png;
    try {
      const result = await this.options.client.files.uploadV2({ file_uploads: [{ file: png, filename: PREVIEW_FILE_NAME, title: 'Preview' }] });
      const completions = (result as unknown as { files?: Array<{ files?: Array<{ id?: string }> }> }).files ?? [];
      const id = completions.flatMap((completion) => completion.files ?? [])[0]?.id;
      if (!id) throw new Error('files.uploadV2 returned no file id');
      const replaced = this.previewFile;
      this.previewFile = id;
      return replaced;
    } catch (error) {
      this.previewsOff = true;
      this.options.logger.warn('slack: could not upload a live preview; progress goes on as text', { request: this.options.requestId, error: slackError(error) ?? String(error) });
      return undefined;
    }
  }

  /** Delete the preview file the status message shows, if any. */
  private async dropPreview(): Promise<void> {
    const id = this.previewFile;
    if (!id) return;
    this.previewFile = undefined;
    await this.deleteFile(id);
  }

  private async deleteFile(id: string): Promise<void> {
    await this.options.client.files.delete({ file: id }).catch((error: unknown) =>
      this.options.logger.warn('slack: could not delete a live preview', { request: this.options.requestId, error: slackError(error) ?? String(error) }));
  }

  /** Edit the status message, or post it (in the target thread, if any) when there is none yet. */
  private async upsert(text: string, blocks: Block[]): Promise<MessageRef> {
    const { client } = this.options;
    if (this.statusMessage) {
      try {
        await client.chat.update({ channel: this.statusMessage.channel, ts: this.statusMessage.ts, text: cut(text, MAX_SECTION), blocks });
        return this.statusMessage;
      } catch (error) {
        // deleted meanwhile (by someone in the channel, or a status message taken over from a route): post a new one
        if (slackError(error) !== 'message_not_found') throw error;
      }
    }
    const posted = await client.chat.postMessage({
      channel: this.target.channelId, text: cut(text, MAX_SECTION), blocks,
      ...(this.target.threadTs ? { thread_ts: this.target.threadTs } : {}),
    });
    this.statusMessage = { channel: posted.channel ?? this.target.channelId, ts: String(posted.ts) };
    try {
      this.routeListener?.(this.route());
    } catch (error) {
      this.options.logger.warn('slack: the job\'s route could not be kept', { request: this.options.requestId, error: String(error) });
    }
    return this.statusMessage;
  }

  private async removeStatus(): Promise<void> {
    if (!this.statusMessage) return;
    const { channel, ts } = this.statusMessage;
    this.statusMessage = null;
    await this.options.client.chat.delete({ channel, ts }).catch((error: unknown) =>
      this.options.logger.warn('slack: could not remove a status message', { request: this.options.requestId, error: slackError(error) ?? String(error) }));
  }

  /**
   * A private reply with files: an ephemeral message cannot carry them, so the reply (images, voice, text, buttons)
   * goes into the requester's direct message with the app (conversations.open, scope `im:write`), and an ephemeral
   * note in the channel says where it went.
   */
  private async sendToDirectMessage(reply: Reply): Promise<string[]> {
    const opened = await this.options.client.conversations.open({ users: this.target.userId });
    const channelId = opened.channel?.id;
    if (!channelId) throw new Error('conversations.open returned no channel');
    const where = this.target;
    this.target = { channelId, userId: where.userId };
    const ids = await this.sendPublic(reply);
    this.target = where;
    await this.sendEphemeral('🔒 Your replies are private (`/pictalk settings set private off` to change that): the result is in your direct messages with pictalk.');
    return ids;
  }

  private async sendEphemeral(text: string): Promise<void> {
    const mrkdwn = cut(toMrkdwn(text), MAX_SECTION);
    // A response_url works for 30 minutes and 5 posts: a job that ends later answers with chat.postEphemeral.
    if (this.target.respond) {
      try {
        await this.target.respond({ response_type: 'ephemeral', replace_original: false, text: mrkdwn });
        return;
      } catch (error) {
        this.options.logger.info('slack: the response_url was refused (expired?); answering with chat.postEphemeral', {
          request: this.options.requestId, error: String(error),
        });
      }
    }
    await this.options.client.chat.postEphemeral({
      channel: this.target.channelId, user: this.target.userId, text: mrkdwn,
      ...(this.target.threadTs ? { thread_ts: this.target.threadTs } : {}),
    });
  }

  private async sendPublic(reply: Reply): Promise<string[]> {
    const notes: string[] = [];
    const uploads: Array<{ file: Buffer; filename: string; title: string; alt_text?: string }> = [];
    for (const [index, image] of (reply.images ?? []).entries()) {
      if (image.png.length > MAX_FILE_BYTES) {
        notes.push(`Image ${index + 1} (${formatBytes(image.png.length)}) is over Slack's upload limit, so it is left out.`);
        continue;
      }
      const alt = cut(image.altText, MAX_ALT_TEXT);
      uploads.push({ file: image.png, filename: image.name, title: cut(image.altText, MAX_TITLE), alt_text: alt });
    }
    const images = uploads.length;
    if (reply.voice) uploads.push({ file: reply.voice.ogg, filename: VOICE_FILE_NAME, title: 'Spoken caption' });
    const text = toMrkdwn([reply.text, ...notes].filter(Boolean).join('\n'));
    const ids: string[] = [];

    if (this.target.threadTs) {
      // Captions: the text (+ buttons) is the thread reply; the voice file follows in the same thread.
      ids.push(messageId(await this.upsert(text, messageBlocks(text, reply.buttons))));
      if (uploads.length > 0) ids.push(...await this.upload(this.target.threadTs, uploads));
      return ids;
    }
    if (uploads.length === 0) {
      ids.push(messageId(await this.upsert(text, messageBlocks(text, reply.buttons))));
      return ids;
    }
    // Images: the status message becomes the anchor, the files and the settings go into its thread.
    const summary = images > 1 ? `✅ Done: ${images} images in the thread.` : images === 1 ? '✅ Done: the image is in the thread.' : '✅ Done: see the thread.';
    const anchor = await this.upsert(summary, messageBlocks(summary, reply.buttons));
    ids.push(messageId(anchor));
    ids.push(...await this.upload(anchor.ts, uploads, text));
    return ids;
  }

  /** files.uploadV2: files.getUploadURLExternal per file, a POST of the bytes, then one files.completeUploadExternal. */
  private async upload(threadTs: string, files: Array<{ file: Buffer; filename: string; title: string; alt_text?: string }>, comment?: string): Promise<string[]> {
    const result = await this.options.client.files.uploadV2({
      channel_id: this.target.channelId,
      thread_ts: threadTs,
      ...(comment ? { initial_comment: comment } : {}),
      file_uploads: files,
    });
    const completions = (result as unknown as { files?: Array<{ files?: Array<{ id?: string }> }> }).files ?? [];
    return completions.flatMap((completion) => completion.files ?? []).flatMap((file) => (file.id ? [`file:${file.id}`] : []));
  }

  /** bot/ allowed the delete: remove the job's messages and files (and the message the button sits on). */
  private async deleteMessages(reply: Reply, messageIds: readonly string[]): Promise<Reply> {
    const { client, logger } = this.options;
    const button = this.target.buttonMessage ? [messageId({ channel: this.target.buttonMessage.channelId, ts: this.target.buttonMessage.ts })] : [];
    let failed = 0;
    for (const id of new Set([...messageIds, ...button])) {
      try {
        if (id.startsWith('file:')) {
          await client.files.delete({ file: id.slice('file:'.length) });
        } else if (id.startsWith('msg:')) {
          const [, channel, ts] = id.split(':') as [string, string, string];
          await client.chat.delete({ channel, ts });
        }
      } catch (error) {
        const code = slackError(error);
        if (code === 'message_not_found' || code === 'file_not_found' || code === 'file_deleted') continue;
        logger.warn('slack: could not delete', { id, error: code ?? String(error) });
        failed += 1;
      }
    }
    if (failed === 0) return reply;
    return { ...reply, text: `pictalk could not delete ${failed === 1 ? 'one item' : `${failed} items`}; please try again.`, error: { code: 'platform.rate_limited', retryable: true } };
  }
}

/**
 * A conversation rebuilt from a job's route (a front restarted while the job ran): the reply goes to the same channel
 * or thread, into the status message the first front posted (when the route has it), and ephemeral answers through
 * the kept response_url while it works (chat.postEphemeral after).
 */
export function reconnectSlack(route: Record<string, unknown> | undefined, options: ConversationOptions): SlackConversation | undefined {
  if (!route || route.platform !== 'slack' || typeof route.channelId !== 'string' || typeof route.userId !== 'string') return undefined;
  const target: SlackTarget = { channelId: route.channelId, userId: route.userId };
  if (typeof route.threadTs === 'string') target.threadTs = route.threadTs;
  const status = route.status as { channel?: unknown; ts?: unknown } | undefined;
  const url = route.responseUrl;
  if (typeof url === 'string' && /^https?:\/\//.test(url)) {
    target.responseUrl = url;
    target.respond = (async (message: Record<string, unknown>) => {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(message) });
      if (!response.ok) throw new Error(`response_url answered ${response.status}`);
      return { ok: true };
    }) as unknown as RespondFn;
  }
  const conversation = new SlackConversation(target, options);
  if (status && typeof status.channel === 'string' && typeof status.ts === 'string') conversation.adoptStatusMessage({ channel: status.channel, ts: status.ts });
  return conversation;
}
