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
  AttachmentBuilder,
  DiscordAPIError,
  RESTJSONErrorCodes,
  ButtonStyle,
  ComponentType,
  MessageFlags,
  Routes,
  type APIActionRowComponent,
  type APIButtonComponentWithCustomId,
  type APIMessage,
  type Client,
  type RepliableInteraction,
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

export interface ConversationContext {
  client: Client;
  applicationId: string;
  statusIntervalMs: number;
  logger: Logger;
  /** For a button press: the message the button sits on (deleted with the job's messages on a `delete` action). */
  buttonMessage?: { channelId: string; id: string };
  /** How long the interaction token works (default 15 minutes; tests shorten it). */
  tokenLifetimeMs?: number;
  /** The public deferred "thinking…" message: removed with the bot token when the reply goes to the channel. */
  placeholderId?: string;
}

interface Upload { name: string; data: Buffer; description: string }

export class DiscordConversation implements Conversation {
  private readonly throttle: StatusThrottle<JobStatus>;
  private finishing = false;

  constructor(
    private readonly interaction: RepliableInteraction,
    private readonly context: ConversationContext,
  ) {
    this.throttle = new StatusThrottle<JobStatus>(
      (update) => this.editStatus(update),
      context.statusIntervalMs,
      (error) => context.logger.warn('discord: a status edit failed', { interaction: interaction.id, error: String(error) }),
    );
  }

  get finished(): boolean {
    return this.finishing;
  }

  /** How another process reaches the requester: the channel, the user, and the deferred reply to remove. */
  route(): Record<string, unknown> | undefined {
    const channelId = this.interaction.channelId;
    if (!channelId) return undefined;
    return {
      platform: 'discord', channelId, userId: this.interaction.user.id, interactionId: this.interaction.id,
      ...(this.context.placeholderId ? { placeholderId: this.context.placeholderId } : {}),
    };
  }

  status(update: JobStatus): void {
    if (!this.finishing) this.throttle.push(update);
  }

  /** Sends the reply; resolves to the ids of the public messages it left, which bot/ keeps for a later `delete`. */
  async finish(reply: Reply): Promise<FinishReceipt> {
    if (this.finishing) {
      this.context.logger.warn('discord: finish called twice; the second reply is dropped', { interaction: this.interaction.id, text: reply.text });
      return { messageIds: [] };
    }
    this.finishing = true;
    // No status edit may land after the final one: stop the throttle and wait for an edit already on the wire.
    await this.throttle.close();
    const final = reply.action?.kind === 'delete' && !reply.error ? await this.deleteMessages(reply, reply.action.messageIds) : reply;
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
        await this.context.client.rest.delete(Routes.channelMessage(channelId, id));
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
    return Date.now() - this.interaction.createdTimestamp >= lifetime - Math.min(30_000, lifetime / 10);
  }

  private async editStatus(update: JobStatus): Promise<void> {
    if (this.finishing || this.tokenExpired) return;
    // The Cancel button rides on every status edit (as on Slack): the requester's only way to stop a queued job.
    // The final edit replaces the components, so the button disappears with the status.
    const cancel: ReplyButton = { action: 'cancel', jobId: update.jobId, label: 'Cancel', style: 'secondary' };
    await this.interaction.editReply({ content: renderStatus(update), components: renderButtons([cancel]) });
  }

  private get sizeLimit(): number {
    // `attachment_size_limit` arrived in 2025; older payloads (and discord.js before 14.22) lack it.
    const limit = (this.interaction as { attachmentSizeLimit?: number }).attachmentSizeLimit;
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
      uploads.push({ name: image.name, data: image.png, description: cut(image.altText, MAX_ALT_TEXT) });
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
    content: string, uploads: Upload[], components: ReturnType<typeof renderButtons>, voice: ReplyVoice | undefined, wantsEphemeral: boolean,
  ): Promise<string[]> {
    const files = uploads.map((u) => new AttachmentBuilder(u.data, { name: u.name, description: u.description }));
    const deferredEphemeral = Boolean(this.interaction.ephemeral);
    const publicIds: string[] = [];
    if (wantsEphemeral && !deferredEphemeral) {
      // The deferred "thinking…" message is public; errors go to the requester alone, so replace it with a follow-up.
      await this.interaction.deleteReply().catch((error: unknown) =>
        this.context.logger.warn('discord: could not delete the deferred reply', { interaction: this.interaction.id, error: String(error) }));
      await this.interaction.followUp({ content, files, components, flags: MessageFlags.Ephemeral });
    } else {
      const message = await this.interaction.editReply({ content, files, components });
      if (!deferredEphemeral) publicIds.push(message.id);
    }
    if (voice) {
      const message = await this.sendVoice(voice, wantsEphemeral || deferredEphemeral);
      if (!(wantsEphemeral || deferredEphemeral)) publicIds.push(message.id);
    }
    return publicIds;
  }

  /**
   * The token has expired: the reply becomes a message of the bot's own in the channel, addressed to the requester
   * (nothing can be ephemeral there, so an error says only what the requester would have seen). The deferred
   * "thinking…" message cannot be edited without the token, so it is deleted with the bot token.
   */
  private async sendToChannel(
    content: string, uploads: Upload[], components: ReturnType<typeof renderButtons>, voice: ReplyVoice | undefined,
  ): Promise<string[]> {
    const channelId = this.interaction.channelId;
    if (!channelId) throw new Error('The interaction token expired and the interaction names no channel to reply in');
    const userId = this.interaction.user.id;
    this.context.logger.info('discord: the interaction token expired; replying in the channel', { interaction: this.interaction.id, channel: channelId });
    const message = (await this.context.client.rest.post(Routes.channelMessages(channelId), {
      body: {
        content: cut(`<@${userId}> ${content}`, MAX_CONTENT),
        components,
        allowed_mentions: { users: [userId] },
        attachments: uploads.map((u, i) => ({ id: String(i), filename: u.name, description: u.description })),
      },
      files: uploads.map((u) => ({ name: u.name, data: u.data, contentType: 'image/png' })),
    })) as APIMessage;
    const ids = [message.id];
    if (voice) {
      const sent = (await this.context.client.rest.post(Routes.channelMessages(channelId), {
        body: voiceBody(voice, false),
        files: [{ name: VOICE_FILE_NAME, data: voice.ogg, contentType: 'audio/ogg' }],
      })) as APIMessage;
      ids.push(sent.id);
    }
    const placeholder = this.context.placeholderId;
    if (placeholder) {
      await this.context.client.rest.delete(Routes.channelMessage(channelId, placeholder)).catch((error: unknown) =>
        this.context.logger.warn('discord: could not remove the deferred reply', { interaction: this.interaction.id, error: String(error) }));
    }
    return ids;
  }

  /**
   * A voice message: flag IS_VOICE_MESSAGE, no content, exactly one Ogg Opus attachment whose metadata carries
   * `duration_secs` and a base64 `waveform`. Sent through REST directly because discord.js derives the part's
   * content type from magic bytes (`application/ogg`), while voice messages are uploaded as `audio/ogg`.
   * @see https://discord.com/developers/docs/resources/message#message-object-message-flags
   */
  private async sendVoice(voice: ReplyVoice, ephemeral: boolean): Promise<APIMessage> {
    return (await this.context.client.rest.post(Routes.webhook(this.context.applicationId, this.interaction.token), {
      body: voiceBody(voice, ephemeral),
      files: [{ name: VOICE_FILE_NAME, data: voice.ogg, contentType: 'audio/ogg' }],
      auth: false,
      query: new URLSearchParams({ wait: 'true' }),
    })) as APIMessage;
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
 * A conversation rebuilt from a job's route (a front restarted while the job ran). The interaction object is gone
 * with the old process, so the reply goes to the channel with the bot token, addressed to the requester, as after the
 * token expired; the old deferred "thinking…" message is removed.
 */
export function reconnectDiscord(route: Record<string, unknown> | undefined, context: ConversationContext): DiscordConversation | undefined {
  if (!route || route.platform !== 'discord' || typeof route.channelId !== 'string' || typeof route.userId !== 'string') return undefined;
  const gone = (): never => { throw new Error('the interaction of a resumed job cannot be answered with its token'); };
  const interaction = {
    id: String(route.interactionId ?? 'resumed'), channelId: route.channelId, user: { id: route.userId }, createdTimestamp: 0,
    token: '', ephemeral: false, editReply: gone, followUp: gone, deleteReply: gone,
  } as unknown as RepliableInteraction;
  return new DiscordConversation(interaction, {
    ...context, ...(typeof route.placeholderId === 'string' ? { placeholderId: route.placeholderId } : {}),
  });
}
