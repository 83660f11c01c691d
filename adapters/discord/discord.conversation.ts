/**
 * bot/'s `Conversation` for one deferred Discord interaction: throttled progress edits of the deferred reply, then one
 * final reply: an edit of the original response (text, PNGs with alt text, buttons), or an ephemeral follow-up for
 * errors, then a voice message as its own follow-up.
 *
 * An interaction token works for 15 minutes. A job that ends later (a long queue, a slow model) cannot use it any
 * more, so its reply goes into the channel as a message of the bot's own, mentioning the requester; a webhook call
 * refused with "Invalid Webhook Token" takes the same way.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding#followup-messages
 */
import type { Logger } from '../../common/logger.js';
import {
  DiscordAPIError,
  RESTJSONErrorCodes,
  ButtonStyle,
  ComponentType,
  MessageFlags,
  Routes,
  type APIActionRowComponent,
  type APIButtonComponentWithCustomId,
  type APIMessage,
  type RawFile,
  type REST,
} from 'discord.js';
import type { Conversation, FinishReceipt, JobStatus, Reply, ReplyButton, ReplyVoice } from '../../bot/types.js';
import { encodeCustomId } from './button.codec.js';
import { formatBytes } from './attachment.download.js';
import { StatusThrottle } from '../status-throttle.js';

/** Logs as `(message, fields)`; `console` fits (common/logger.ts). */
export type { Logger };

/** Per-file upload limit when the interaction does not say (`attachment_size_limit`): the limit of an unboosted server. */
export const DEFAULT_ATTACHMENT_SIZE_LIMIT = 8 * 1024 * 1024;
const MAX_CONTENT = 2000;        // message content, characters
const MAX_ALT_TEXT = 1024;       // attachment description, characters
const MAX_BUTTONS_PER_ROW = 5;
const VOICE_FILE_NAME = 'voice-message.ogg';
const PREVIEW_FILE_NAME = 'preview.png';
/** Discord: "Interaction tokens are valid for 15 minutes". */
export const INTERACTION_TOKEN_LIFETIME_MS = 15 * 60_000;
const INVALID_WEBHOOK_TOKEN = 50027;

const STYLES: Record<ReplyButton['style'], ButtonStyle.Primary | ButtonStyle.Secondary | ButtonStyle.Danger> = {
  primary: ButtonStyle.Primary,
  secondary: ButtonStyle.Secondary,
  danger: ButtonStyle.Danger,
};

/** Cut visibly (with an ellipsis) rather than let Discord reject the whole message. */
const cut = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

export function renderStatus(update: JobStatus): string {
  if (update.state === 'queued') {
    return update.position <= 1 ? '⏳ Queued: you are next.' : `⏳ Queued: position ${update.position}.`;
  }
  return `🎨 Working: ${update.stage} ${update.step}/${update.total}`;
}

export function renderButtons(buttons: readonly ReplyButton[]): APIActionRowComponent<APIButtonComponentWithCustomId>[] {
  const rows: APIActionRowComponent<APIButtonComponentWithCustomId>[] = [];
  for (let i = 0; i < buttons.length; i += MAX_BUTTONS_PER_ROW) {
    rows.push({
      type: ComponentType.ActionRow,
      components: buttons.slice(i, i + MAX_BUTTONS_PER_ROW).map((button) => ({
        type: ComponentType.Button,
        style: STYLES[button.style],
        label: button.label,
        custom_id: encodeCustomId(button),
      })),
    });
  }
  return rows;
}

/**
 * One interaction as a conversation needs it, the same whether it came through the gateway or the interactions
 * endpoint: its id and webhook token, where it happened, who asked, and how it was acknowledged.
 */
export interface InteractionRef {
  id: string;
  token: string;
  channelId: string | undefined;
  userId: string;
  /** When Discord created the interaction (from its snowflake id): the token works for 15 minutes from then. */
  createdAt: number;
  /** `attachment_size_limit` from the payload, when Discord sent it. */
  attachmentSizeLimit?: number;
  /**
   * How the interaction was acknowledged. `reply` (type 5, deferred channel message): `@original` is the "thinking…"
   * placeholder that progress and the reply edit. `update` (type 6, deferred update, for buttons): `@original` is the
   * message the button sits on, which stays as it is; progress and the reply go into a follow-up of their own.
   */
  ack: 'reply' | 'update';
  /** The deferred reply is ephemeral (seen by the requester alone). */
  ephemeral: boolean;
}

export interface ConversationContext {
  /** The REST client: webhook calls go without the bot token (`auth: false`), channel calls with it. */
  rest: REST;
  applicationId: string;
  statusIntervalMs: number;
  logger: Logger;
  /** For a button press: the message the button sits on (deleted with the job's messages on a `delete` action). */
  buttonMessage?: { channelId: string; id: string };
  /** How long the interaction token works (default 15 minutes; tests shorten it). */
  tokenLifetimeMs?: number;
  /** The public deferred "thinking…" message: removed with the bot token when the reply goes to the channel. */
  placeholderId?: string;
  /** A line added to a successful reply (the `/pictalk` status: which shards or endpoint this process serves). */
  footer?: string;
  /** Called at bot/'s first status or its reply, whichever comes first: the command has been taken. */
  onFirstActivity?: () => void;
}

interface Upload { name: string; data: Buffer; description: string }
type Components = ReturnType<typeof renderButtons>;

const uploadBody = (uploads: Upload[]) => uploads.map((u, i) => ({ id: String(i), filename: u.name, description: u.description }));
const uploadFiles = (uploads: Upload[]) => uploads.map((u) => ({ name: u.name, data: u.data, contentType: 'image/png' }));

export class DiscordConversation implements Conversation {
  private readonly throttle: StatusThrottle<JobStatus>;
  private finishing = false;
  /**
   * The message progress and the reply edit through the token: `@original` after a deferred reply; after a deferred
   * update, the follow-up the first progress edit posted (none yet: the reply is posted as a follow-up).
   */
  private target: string | undefined;
  /** The live preview last attached to the progress message (the final edit removes it). */
  private previewSent: Buffer | undefined;

  constructor(
    private readonly interaction: InteractionRef,
    private readonly context: ConversationContext,
  ) {
    this.target = interaction.ack === 'reply' ? '@original' : undefined;
    this.throttle = new StatusThrottle<JobStatus>(
      (update) => this.editStatus(update),
      context.statusIntervalMs,
      (error) => context.logger.warn('discord: a status edit failed', { interaction: interaction.id, error: String(error) }),
    );
  }

  get finished(): boolean {
    return this.finishing;
  }

  /**
   * How another process reaches the requester: the channel and the user, and, while it works, the interaction's token
   * (so a front that takes the job over edits the same reply), and the deferred reply to remove otherwise.
   */
  route(): Record<string, unknown> | undefined {
    const { channelId, userId, id, token, createdAt, ack, ephemeral } = this.interaction;
    if (!channelId) return undefined;
    return {
      platform: 'discord', channelId, userId, interactionId: id, token, createdAt, ack, ephemeral,
      ...(this.context.placeholderId ? { placeholderId: this.context.placeholderId } : {}),
    };
  }

  status(update: JobStatus): void {
    this.context.onFirstActivity?.();
    if (!this.finishing) this.throttle.push(update);
  }

  /** Sends the reply; resolves to the ids of the public messages it left, which bot/ keeps for a later `delete`. */
  async finish(reply: Reply): Promise<FinishReceipt> {
    if (this.finishing) {
      this.context.logger.warn('discord: finish called twice; the second reply is dropped', { interaction: this.interaction.id, text: reply.text });
      return { messageIds: [] };
    }
    this.finishing = true;
    this.context.onFirstActivity?.();
    // No status edit may land after the final one: stop the throttle and wait for an edit already on the wire.
    await this.throttle.close();
    let final = reply.action?.kind === 'delete' && !reply.error ? await this.deleteMessages(reply, reply.action.messageIds) : reply;
    // another front answers this interaction (it edits the same original response with the same token): leave it be
    if (final.silent && !final.error) return { messageIds: [] };
    if (this.context.footer && !final.error) final = { ...final, text: [final.text, this.context.footer].filter(Boolean).join('\n') };
    return { messageIds: await this.send(final) };
  }

  /** bot/ allowed the delete: remove the job's messages (and the one the button sits on); gone already is fine. */
  private async deleteMessages(reply: Reply, messageIds: readonly string[]): Promise<Reply> {
    const channelId = this.context.buttonMessage?.channelId ?? this.interaction.channelId;
    const ids = [...new Set([...messageIds, ...(this.context.buttonMessage ? [this.context.buttonMessage.id] : [])])];
    const failed: string[] = [];
    for (const id of ids) {
      if (!channelId) break;
      try {
        await this.context.rest.delete(Routes.channelMessage(channelId, id));
      } catch (error) {
        if (error instanceof DiscordAPIError && error.code === RESTJSONErrorCodes.UnknownMessage) continue;
        this.context.logger.warn('discord: could not delete a message', { message: id, error: String(error) });
        failed.push(id);
      }
    }
    if (failed.length === 0) return reply;
    return { ...reply, text: `pictalk could not delete ${failed.length === 1 ? 'one message' : `${failed.length} messages`}; please try again.`, error: { code: 'platform.rate_limited', retryable: true } };
  }

  /** True once the token is about to expire (a margin of a tenth of its life, at most 30 s, for the call itself). */
  private get tokenExpired(): boolean {
    const lifetime = this.context.tokenLifetimeMs ?? INTERACTION_TOKEN_LIFETIME_MS;
    return this.interaction.token === '' || Date.now() - this.interaction.createdAt >= lifetime - Math.min(30_000, lifetime / 10);
  }

  // ---- the interaction's webhook: edits and follow-ups with the interaction token, not the bot token ------------

  private async edit(messageId: string, body: Record<string, unknown>, uploads: Upload[] = []): Promise<APIMessage> {
    const { applicationId } = this.context;
    return (await this.context.rest.patch(Routes.webhookMessage(applicationId, this.interaction.token, messageId), {
      body: uploads.length ? { ...body, attachments: uploadBody(uploads) } : body,
      ...(uploads.length ? { files: uploadFiles(uploads) } : {}),
      auth: false,
    })) as APIMessage;
  }

  private async followUp(body: Record<string, unknown>, files: RawFile[] = []): Promise<APIMessage> {
    return (await this.context.rest.post(Routes.webhook(this.context.applicationId, this.interaction.token), {
      body, files, auth: false, query: new URLSearchParams({ wait: 'true' }),
    })) as APIMessage;
  }

  private async deleteTarget(): Promise<void> {
    const target = this.target;
    if (!target) return;
    this.target = undefined;
    await this.context.rest.delete(Routes.webhookMessage(this.context.applicationId, this.interaction.token, target), { auth: false })
      .catch((error: unknown) => this.context.logger.warn('discord: could not delete the deferred reply', { interaction: this.interaction.id, error: String(error) }));
  }

  private async editStatus(update: JobStatus): Promise<void> {
    if (this.finishing || this.tokenExpired) return;
    // The Cancel button rides on every status edit (as on Slack): the requester's only way to stop a queued job.
    // The final edit replaces the components, so the button disappears with the status.
    const cancel: ReplyButton = { action: 'cancel', jobId: update.jobId, label: 'Cancel', style: 'secondary' };
    // a new live preview goes up as the message's only attachment, shown in an embed; the same one is not sent again
    const preview = update.state === 'running' && update.preview && update.preview.png !== this.previewSent ? update.preview : undefined;
    const uploads: Upload[] = preview ? [{ name: PREVIEW_FILE_NAME, data: preview.png, description: 'A rough preview of the picture as it forms' }] : [];
    const body = {
      content: renderStatus(update), components: renderButtons([cancel]),
      ...(preview ? { embeds: [{ image: { url: `attachment://${PREVIEW_FILE_NAME}`, width: preview.width, height: preview.height } }] } : {}),
    };
    if (this.target) await this.edit(this.target, body, uploads);
    else {
      const flags = this.interaction.ephemeral ? MessageFlags.Ephemeral : 0;
      this.target = (await this.followUp({ ...body, flags, ...(preview ? { attachments: uploadBody(uploads) } : {}) }, uploadFiles(uploads))).id;
    }
    if (preview) this.previewSent = preview.png;
  }

  private get sizeLimit(): number {
    // `attachment_size_limit` arrived in 2025; older payloads lack it.
    const limit = this.interaction.attachmentSizeLimit;
    return typeof limit === 'number' && limit > 0 ? limit : DEFAULT_ATTACHMENT_SIZE_LIMIT;
  }

  private async send(reply: Reply): Promise<string[]> {
    const limit = this.sizeLimit;
    const notes: string[] = [];
    const uploads: Upload[] = [];
    for (const [index, image] of (reply.images ?? []).entries()) {
      if (image.png.length > limit) {
        notes.push(`Image ${index + 1} (${formatBytes(image.png.length)}) is over this server's upload limit of ${formatBytes(limit)}, so it is left out.`);
        continue;
      }
      // a flagged image sent in spoiler mode (bot/ allows it only in age-restricted channels): Discord blurs SPOILER_ files
      uploads.push({ name: image.spoiler ? `SPOILER_${image.name}` : image.name, data: image.png, description: cut(image.altText, MAX_ALT_TEXT) });
    }
    let voice: ReplyVoice | undefined = reply.voice;
    if (voice && voice.ogg.length > limit) {
      notes.push(`The voice message (${formatBytes(voice.ogg.length)}) is over this server's upload limit of ${formatBytes(limit)}, so it is left out.`);
      voice = undefined;
    }
    const content = [reply.text, ...notes].filter(Boolean).join('\n');
    const components = reply.buttons?.length ? renderButtons(reply.buttons) : [];
    const wantsEphemeral = Boolean(reply.error || reply.ephemeral);
    if (this.tokenExpired) return this.sendToChannel(content, uploads, components, voice);
    try {
      return await this.sendWithToken(cut(content, MAX_CONTENT), uploads, components, voice, wantsEphemeral);
    } catch (error) {
      if (!(error instanceof DiscordAPIError && error.code === INVALID_WEBHOOK_TOKEN)) throw error;
      return this.sendToChannel(content, uploads, components, voice);
    }
  }

  private async sendWithToken(
    content: string, uploads: Upload[], components: Components, voice: ReplyVoice | undefined, wantsEphemeral: boolean,
  ): Promise<string[]> {
    const deferredEphemeral = this.interaction.ephemeral;
    const privately = wantsEphemeral || deferredEphemeral;
    const publicIds: string[] = [];
    // The deferred "thinking…" message (or a button's progress follow-up) is public; an error goes to the requester
    // alone, so that message is removed and the reply becomes an ephemeral follow-up.
    if (privately && !deferredEphemeral) await this.deleteTarget();
    if (this.target) {
      // a live preview on the progress message goes: its embed and attachment are replaced by the reply's
      const message = await this.edit(this.target, { content, components, ...(this.previewSent ? { embeds: [], attachments: [] } : {}) }, uploads);
      if (!privately) publicIds.push(message.id);
    } else {
      const flags = privately ? MessageFlags.Ephemeral : 0;
      const message = await this.followUp({ content, components, flags, attachments: uploadBody(uploads) }, uploadFiles(uploads));
      if (!privately) {
        this.target = message.id;
        publicIds.push(message.id);
      }
    }
    if (voice) {
      let message: APIMessage;
      try {
        message = await this.sendVoice(voice, privately);
      } catch (error) {
        // The webhook would not take the voice message: post it in the channel with the bot token instead (a private
        // one cannot go there; an expired token is the caller's to handle).
        if (!(error instanceof DiscordAPIError) || error.code === INVALID_WEBHOOK_TOKEN || privately) throw error;
        this.context.logger.warn('discord: the interaction webhook refused the voice message; posting it in the channel', { interaction: this.interaction.id, error: String(error) });
        if (!this.interaction.channelId) throw error;
        message = await this.channelVoice(this.interaction.channelId, voice);
      }
      if (!privately) publicIds.push(message.id);
    }
    return publicIds;
  }

  /**
   * The token has expired: the reply becomes a message of the bot's own in the channel, addressed to the requester
   * (nothing can be ephemeral there, so an error says only what the requester would have seen). The deferred
   * "thinking…" message cannot be edited without the token, so it is deleted with the bot token.
   */
  private async sendToChannel(content: string, uploads: Upload[], components: Components, voice: ReplyVoice | undefined): Promise<string[]> {
    const { channelId, userId } = this.interaction;
    if (!channelId) throw new Error('The interaction token expired and the interaction names no channel to reply in');
    this.context.logger.info('discord: the interaction token expired; replying in the channel', { interaction: this.interaction.id, channel: channelId });
    const message = (await this.context.rest.post(Routes.channelMessages(channelId), {
      body: {
        content: cut(`<@${userId}> ${content}`, MAX_CONTENT),
        components,
        allowed_mentions: { users: [userId] },
        attachments: uploadBody(uploads),
      },
      files: uploadFiles(uploads),
    })) as APIMessage;
    const ids = [message.id];
    if (voice) ids.push((await this.channelVoice(channelId, voice)).id);
    // The public message the token can no longer edit: the placeholder, or a button's progress follow-up.
    const placeholder = this.context.placeholderId ?? (this.target !== '@original' ? this.target : undefined);
    if (placeholder) {
      await this.context.rest.delete(Routes.channelMessage(channelId, placeholder)).catch((error: unknown) =>
        this.context.logger.warn('discord: could not remove the deferred reply', { interaction: this.interaction.id, error: String(error) }));
    }
    return ids;
  }

  /** A voice message posted in the channel with the bot token. */
  private async channelVoice(channelId: string, voice: ReplyVoice): Promise<APIMessage> {
    return (await this.context.rest.post(Routes.channelMessages(channelId), {
      body: voiceBody(voice, false),
      files: [{ name: VOICE_FILE_NAME, data: voice.ogg, contentType: 'audio/ogg' }],
    })) as APIMessage;
  }

  /**
   * A voice message: flag IS_VOICE_MESSAGE, no content, exactly one Ogg Opus attachment whose metadata carries
   * `duration_secs` and a base64 `waveform`, uploaded as `audio/ogg`.
   * @see https://discord.com/developers/docs/resources/message#message-object-message-flags
   */
  private async sendVoice(voice: ReplyVoice, ephemeral: boolean): Promise<APIMessage> {
    return this.followUp(voiceBody(voice, ephemeral), [{ name: VOICE_FILE_NAME, data: voice.ogg, contentType: 'audio/ogg' }]);
  }
}

/** A voice message's body: flag IS_VOICE_MESSAGE, no content, one attachment with its duration and waveform. */
function voiceBody(voice: ReplyVoice, ephemeral: boolean): Record<string, unknown> {
  return {
    flags: MessageFlags.IsVoiceMessage | (ephemeral ? MessageFlags.Ephemeral : 0),
    attachments: [{
      id: '0',
      filename: VOICE_FILE_NAME,
      duration_secs: voice.durationSecs,
      waveform: Buffer.from(voice.waveform).toString('base64'),
    }],
  };
}

/**
 * A conversation rebuilt from a job's route (a front restarted while the job ran, or another front took it over).
 * While the interaction token still works, the reply edits the same deferred message through it; after that it goes
 * to the channel with the bot token, addressed to the requester, and the old "thinking…" message is removed.
 */
export function reconnectDiscord(route: Record<string, unknown> | undefined, context: ConversationContext): DiscordConversation | undefined {
  if (!route || route.platform !== 'discord' || typeof route.channelId !== 'string' || typeof route.userId !== 'string') return undefined;
  const token = typeof route.token === 'string' ? route.token : '';
  const interaction: InteractionRef = {
    id: String(route.interactionId ?? 'resumed'), token, channelId: route.channelId, userId: route.userId,
    createdAt: typeof route.createdAt === 'number' ? route.createdAt : 0,
    ack: route.ack === 'update' ? 'update' : 'reply', ephemeral: route.ephemeral === true,
  };
  return new DiscordConversation(interaction, {
    ...context, ...(typeof route.placeholderId === 'string' ? { placeholderId: route.placeholderId } : {}),
  });
}
