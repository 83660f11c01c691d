/**
 * One interaction, from its arrival to bot/'s reply, the same for both ways Discord delivers interactions: the
 * gateway (the initial response is a POST to the callback endpoint) and the interactions endpoint (it is the body of
 * the HTTP answer). `receive` decides the initial response at once, with no I/O, so it always beats Discord's
 * 3-second deadline; `run` then hands the command to bot/ with a conversation that edits and follows up through the
 * interaction's webhook.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction
 */
import {
  InteractionResponseType,
  InteractionType,
  MessageFlags,
  type APIInteraction,
  type APIInteractionResponse,
  type REST,
} from 'discord.js';
import { errorReply } from '../../bot/replies.js';
import type { Actor, BotRequest, Conversation } from '../../bot/types.js';
import { PRIVATE_ABLE } from '../../bot/user.settings.js';
import { isPictalkError } from '../../common/errors.js';
import { DiscordConversation, type InteractionRef, type Logger } from './discord.conversation.js';
import { actorOf, ageRestrictedOf, channelOf, snowflakeTime, translateInteraction, userOf, type Translation } from './interaction.translate.js';

/** The one thing the adapter needs from bot/. */
export interface BotPort {
  /** bot/'s `Bot.handle` resolves to an outcome the adapter does not need. */
  handle(request: BotRequest, conversation: Conversation): Promise<unknown>;
  /** The user's `private` setting: their replies (deferred reply, progress, result) go to them alone. */
  privateReplies?(actor: Actor): Promise<boolean>;
}

/**
 * How long `acknowledge` waits for a user's private-replies setting before deferring publicly. Discord allows 3 s
 * for the whole answer; the look-up is one indexed read of the store. When it is late the deferral is public and
 * bot/ still makes the final reply ephemeral (the conversation removes the public placeholder then).
 */
export const PRIVATE_LOOKUP_MS = 1000;

export interface HandlerOptions {
  rest: REST;
  applicationId: string;
  bot: BotPort;
  logger: Logger;
  statusIntervalMs: number;
  tokenLifetimeMs?: number;
  /** A line for the `/pictalk` status reply: how this process receives interactions (its shards, or the endpoint). */
  footer?: (interaction: APIInteraction) => string | undefined;
}

export interface Received {
  /** The initial response: PONG, a message, a deferred message (5) or a deferred update (6). */
  response: APIInteractionResponse;
  /** An interaction this process has already taken (a resumed session's replay, a retried delivery). */
  duplicate: boolean;
  /** After the response went out: run the command; resolves when bot/ has replied. Absent for an answer at once. */
  run?: (placeholderId?: string) => Promise<void>;
  /** The response could not be sent (gateway: the callback failed): the command will not run. */
  abandon?: () => void;
}

// Interaction ids already taken here: a resumed gateway session or a duplicate delivery must not start a second job.
// Across processes the same rule is bot/'s: a request id is claimed once in the shared store.
const SEEN_LIMIT = 5000;

const message = (text: string): APIInteractionResponse => ({
  type: InteractionResponseType.ChannelMessageWithSource, data: { content: text, flags: MessageFlags.Ephemeral },
});

export class InteractionHandler {
  private readonly seen = new Set<string>();
  /** Commands acknowledged to Discord that bot/ has not yet taken (queued, or answered): a stopping front waits for them. */
  private readonly starting = new Set<() => void>();
  private drainWaiters: Array<() => void> = [];

  constructor(private readonly options: HandlerOptions) {}

  /**
   * `receive`, after asking bot/ (within PRIVATE_LOOKUP_MS) whether the user wants private replies, for the commands
   * that setting covers: the deferred reply is then ephemeral from the start. What the adapters call.
   */
  async acknowledge(interaction: APIInteraction, receivedAt = Date.now()): Promise<Received> {
    return this.receive(interaction, receivedAt, await this.wantsPrivate(interaction));
  }

  private async wantsPrivate(interaction: APIInteraction): Promise<boolean> {
    const { bot, logger } = this.options;
    if (!bot.privateReplies || interaction.type === InteractionType.Ping || this.seen.has(interaction.id)) return false;
    let translation: Translation | null;
    try {
      translation = translateInteraction(interaction);
    } catch {
      return false;     // `receive` answers with the reason
    }
    if (translation?.kind !== 'command' || translation.ephemeral || !PRIVATE_ABLE.has(translation.command.name)) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        bot.privateReplies(actorOf(interaction)),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), PRIVATE_LOOKUP_MS); }),
      ]);
    } catch (error) {
      logger.warn('discord: could not read the private-replies setting; deferring publicly', { interaction: interaction.id, error: String(error) });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Decide the initial response to one interaction (no I/O); the caller sends it, then calls `run`. `privately`: the
   * user's private-replies setting, as `acknowledge` found it.
   */
  receive(interaction: APIInteraction, receivedAt = Date.now(), privately = false): Received {
    if (interaction.type === InteractionType.Ping) return { response: { type: InteractionResponseType.Pong }, duplicate: false };
    const duplicate = this.seen.has(interaction.id);
    if (!duplicate) {
      this.seen.add(interaction.id);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
    }

    let translation: Translation | null;
    try {
      translation = translateInteraction(interaction);
    } catch (error) {
      return { response: message(isPictalkError(error) ? error.message : 'pictalk could not read that command.'), duplicate };
    }
    if (!translation) {
      if (interaction.type === InteractionType.ApplicationCommandAutocomplete) {
        return { response: { type: InteractionResponseType.ApplicationCommandAutocompleteResult, data: { choices: [] } }, duplicate };
      }
      return { response: message('pictalk does not handle this kind of interaction.'), duplicate };
    }
    if (translation.kind === 'answer') return { response: message(translation.text), duplicate };
    if (privately && !translation.ephemeral) translation = { ...translation, ephemeral: true };

    // A button press is acknowledged as a deferred update: the message it sits on stays as it is, and what the press
    // starts (a re-roll's progress and image, a private notice) comes as follow-ups.
    const ack: InteractionRef['ack'] = translation.message ? 'update' : 'reply';
    const response: APIInteractionResponse = ack === 'update'
      ? { type: InteractionResponseType.DeferredMessageUpdate }
      : { type: InteractionResponseType.DeferredChannelMessageWithSource, data: { flags: (translation.ephemeral ? MessageFlags.Ephemeral : 0) as MessageFlags } };
    if (duplicate) return { response, duplicate };
    const command = translation;
    let taken = false;
    const take = (): void => {
      if (taken) return;
      taken = true;
      this.starting.delete(take);
      if (this.starting.size === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    };
    this.starting.add(take);
    return {
      response, duplicate, abandon: take,
      run: (placeholderId) => this.run(interaction, command, ack, receivedAt, placeholderId, take).finally(take),
    };
  }

  /**
   * Resolves once every command acknowledged so far has been taken by bot/ (its job queued, or its reply sent), or
   * after `timeoutMs`. A front that stops waits for this before letting go of its jobs, so a command Discord was told
   * is on its way is in the shared queue, where another front takes it over, and not lost with this process.
   */
  async drain(timeoutMs = 10_000): Promise<number> {
    if (this.starting.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
      ]);
      clearTimeout(timer);
    }
    return this.starting.size;
  }

  private async run(
    interaction: APIInteraction, translation: Extract<Translation, { kind: 'command' }>, ack: InteractionRef['ack'], receivedAt: number,
    placeholderId: string | undefined, taken: () => void,
  ): Promise<void> {
    const { rest, applicationId, bot, logger, statusIntervalMs, tokenLifetimeMs } = this.options;
    const user = userOf(interaction);
    const channelId = channelOf(interaction);
    const ref: InteractionRef = {
      id: interaction.id, token: interaction.token, channelId, userId: user.id, createdAt: snowflakeTime(interaction.id, receivedAt),
      ack, ephemeral: translation.ephemeral,
      ...(typeof interaction.attachment_size_limit === 'number' ? { attachmentSizeLimit: interaction.attachment_size_limit } : {}),
    };
    const footer = translation.command.name === 'status' ? this.options.footer?.(interaction) : undefined;
    const conversation = new DiscordConversation(ref, {
      rest, applicationId, statusIntervalMs, logger,
      ...(tokenLifetimeMs !== undefined ? { tokenLifetimeMs } : {}),
      ...(placeholderId && !translation.ephemeral ? { placeholderId } : {}),
      ...(translation.message ? { buttonMessage: translation.message } : {}),
      ...(footer ? { footer } : {}),
      // bot/ reports the queue position once the job is queued, and finishes at once what needs no job
      onFirstActivity: taken,
    });
    const request: BotRequest = {
      id: interaction.id, actor: actorOf(interaction), channelId: channelId ?? '', command: translation.command, receivedAt,
      ageRestricted: ageRestrictedOf(interaction),
    };
    try {
      await bot.handle(request, conversation);
    } catch (error) {
      logger.error('discord: bot.handle failed', { interaction: interaction.id, error: String(error) });
      if (!conversation.finished) await conversation.finish(errorReply(error));
    }
  }
}
