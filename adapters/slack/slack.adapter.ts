/**
 * The Slack adapter: a Bolt app in Socket Mode (an app-level token, no public port) or HTTP mode (a signing secret,
 * one endpoint `/slack/events` for commands, events and interactivity). Every listener acks at once (Slack's 3 s
 * deadline), translates the payload for bot/, and runs the request in the background so the ack is never late.
 *
 * Retries never start a second job: each request carries Slack's own stable id (the event's `event_id`, the
 * command's, shortcut's or button's `trigger_id`), the adapter drops a delivery whose id it already accepted, and
 * bot/ drops it again by id (idempotency survives a restart, the adapter's memory does not).
 * @see https://docs.slack.dev/apis/events-api/#retries
 * @see https://docs.slack.dev/apis/events-api/using-socket-mode
 */
import { errorReply } from '../../bot/replies.js';
import { App, HTTPReceiver, LogLevel, SocketModeReceiver, type Logger as BoltLogger, type RespondFn, type webApi } from '@slack/bolt';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buttonCommand } from '../../bot/buttons.js';
import { BUTTON_ACTIONS, type Actor, type BotCommand, type BotRequest, type ButtonAction, type Conversation } from '../../bot/types.js';
import { PictalkError, describe, isPictalkError } from '../../common/errors.js';
import { parseAutoCaption, parseImagine, parsePictalk, parseQuota } from './command.parse.js';
import { PRIVATE_ABLE } from '../../bot/user.settings.js';
import { fileName, isImageFile, toBotAttachment, type SlackFile } from './file.download.js';
import { ACTION_PREFIX, SlackConversation, reconnectSlack, slackError, toMrkdwn, type Logger, type SlackTarget } from './slack.conversation.js';
import { WorkspaceAdmins } from './workspace-admins.js';

export type { Logger } from './slack.conversation.js';

/** What the adapter needs from bot/ (`Bot` fits). */
export interface SlackBotPort {
  handle(request: BotRequest, conversation: Conversation): Promise<unknown>;
  /** Auto-captioning: is it on in this channel (`/pictalk-caption on`)? Without it, shared images are not captioned. */
  isAutoCaptionChannel?(spaceId: string, channelId: string): Promise<boolean> | boolean;
  /** The user's `private` setting: their status and reply stay private (bot/user.settings.ts). */
  privateReplies?(actor: Actor): Promise<boolean>;
}

export interface SlackAdapterOptions {
  /** Bot token, `xoxb-...`. */
  botToken: string;
  /** App-level token, `xapp-...` (scope `connections:write`): Socket Mode. Wins over `signingSecret` when both are set. */
  appToken?: string;
  /** Signing secret: HTTP mode on `port`, endpoint `/slack/events`. */
  signingSecret?: string;
  /** HTTP mode's port (default 3000; 0 picks a free one, see `SlackAdapter.port`). */
  port?: number;
  /** Web API base, e.g. `https://slack.com/api/` (the default) or a fake's `http://127.0.0.1:PORT/api/`. */
  apiUrl?: string;
  bot: SlackBotPort;
  logger?: Logger;
  /** Least time between two status edits of one message (default 1500 ms). */
  statusIntervalMs?: number;
  /** How long a users.info admin answer is trusted (default 60 s). */
  adminCacheMs?: number;
}

export interface SlackAdapter {
  app: App;
  mode: 'socket' | 'http';
  /** HTTP mode: the port the receiver listens on. */
  port?: number;
  /** A conversation from a job's route (kept by bot/ at accept), for a job that a restarted front follows again. */
  reconnect(route: Record<string, unknown> | undefined, requestId: string): Conversation | undefined;
  /** Stop receiving, then wait (up to `drainMs`, default 5 s) for requests already handed to bot/. */
  stop(drainMs?: number): Promise<void>;
}

export const SHORTCUT_CAPTION = 'caption_image';
export const SLASH_COMMANDS = ['/imagine', '/pictalk', '/pictalk-quota', '/pictalk-caption'] as const;
const DEFAULT_STATUS_INTERVAL_MS = 1500;
const SEEN_LIMIT = 5000;

/** Bolt logs as `(...messages)` and wants levels; pictalk's logger takes `(message, fields)`. */
function boltLogger(logger: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const text = (messages: unknown[]) => `slack(bolt): ${messages.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ')}`;
  return {
    debug: (...messages: unknown[]) => logger.debug?.(text(messages)),
    info: (...messages: unknown[]) => logger.info(text(messages)),
    warn: (...messages: unknown[]) => logger.warn(text(messages)),
    error: (...messages: unknown[]) => logger.error(text(messages)),
    setLevel: (next: LogLevel) => { level = next; },
    getLevel: () => level,
    setName: () => undefined,
  };
}

function checkOptions(options: SlackAdapterOptions): void {
  const bad = (name: string, value: unknown, expected: string) =>
    new PictalkError('config.invalid', `Expected \`${name}\` to be ${expected}, got ${describe(value)}`, { setting: name });
  if (typeof options.botToken !== 'string' || options.botToken.trim() === '') throw bad('botToken', options.botToken, 'a bot token (xoxb-...)');
  if (options.appToken === undefined && options.signingSecret === undefined) {
    throw new PictalkError('config.invalid', 'Slack needs `appToken` (Socket Mode) or `signingSecret` (HTTP mode); neither is set', { setting: 'appToken' });
  }
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535)) throw bad('port', options.port, 'an integer from 0 to 65535');
  if (options.apiUrl !== undefined && !/^https?:\/\//.test(options.apiUrl)) throw bad('apiUrl', options.apiUrl, 'an http(s) URL');
  if (options.statusIntervalMs !== undefined && !(options.statusIntervalMs >= 0)) throw bad('statusIntervalMs', options.statusIntervalMs, 'a number >= 0');
}

/** An ephemeral answer without bot/ (a parse error): through response_url, never public. */
async function answer(respond: RespondFn | undefined, text: string): Promise<void> {
  await respond?.({ response_type: 'ephemeral', replace_original: false, text: toMrkdwn(text) });
}

const failureText = (error: unknown): string =>
  isPictalkError(error) ? `⚠️ ${error.message}` : '⚠️ pictalk could not read that command.';

/** Connect to Slack (auth.test first, so a bad token fails here) and start answering. */
export async function startSlackAdapter(options: SlackAdapterOptions): Promise<SlackAdapter> {
  checkOptions(options);
  const { botToken, appToken, signingSecret, bot } = options;
  const logger: Logger = options.logger ?? console;
  const statusIntervalMs = options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
  const mode: SlackAdapter['mode'] = appToken !== undefined ? 'socket' : 'http';
  // WebClient joins method names onto the base, so it must end in `/`.
  const slackApiUrl = options.apiUrl === undefined ? undefined : options.apiUrl.endsWith('/') ? options.apiUrl : `${options.apiUrl}/`;
  const log = boltLogger(logger);
  // Separate objects: SocketModeClient writes its own retryConfig (100 retries) into the options it gets.
  const clientOptions = () => (slackApiUrl ? { slackApiUrl } : {});
  const receiver = mode === 'socket'
    ? new SocketModeReceiver({ appToken: appToken!, logger: log, installerOptions: { clientOptions: clientOptions() } })
    : new HTTPReceiver({ signingSecret: signingSecret!, logger: log, endpoints: '/slack/events' });
  const app = new App({ token: botToken, receiver, logger: log, clientOptions: clientOptions(), deferInitialization: true });
  try {
    await app.init();
  } catch (error) {
    throw new PictalkError('config.invalid', `Slack rejected the bot token: auth.test answered ${describe(slackError(error) ?? (error as Error)?.message)}`,
      { setting: 'botToken' }, { cause: error });
  }

  const admins = new WorkspaceAdmins(options.adminCacheMs);
  const seen = new Map<string, number>();
  const inFlight = new Set<Promise<unknown>>();
  if (!bot.isAutoCaptionChannel) logger.warn('slack: the bot offers no isAutoCaptionChannel; images shared in channels are not captioned');

  async function actorOf(client: webApi.WebClient, teamId: string, userId: string): Promise<Actor> {
    const actor: Actor = { platform: 'slack', userId, spaceId: teamId, roleIds: [], platformModerator: false };
    try {
      const facts = await admins.lookup(client, teamId, userId);
      actor.platformModerator = facts.moderator;
      if (facts.displayName) actor.displayName = facts.displayName;
    } catch (error) {
      logger.warn('slack: users.info failed; treating the user as a non-admin', { user: userId, error: slackError(error) ?? String(error) });
    }
    return actor;
  }

  /** The user's private-replies setting (bot/ marks the reply ephemeral anyway; this keeps the status message away). */
  async function wantsPrivate(actor: Actor): Promise<boolean> {
    try {
      return (await bot.privateReplies?.(actor)) === true;
    } catch (error) {
      logger.warn('slack: could not read the private-replies setting', { user: actor.userId, error: String(error) });
      return false;
    }
  }

  interface Accepted {
    id: string;
    retryNum?: number;
    teamId: string;
    userId: string;
    command: BotCommand;
    target: SlackTarget;
    client: webApi.WebClient;
  }

  /** Take a request for bot/ once per id; the work runs in the background, after the listener has acked. */
  function accept(input: Accepted): void {
    const receivedAt = Date.now();
    if (seen.has(input.id)) {
      logger.info('slack: a repeated delivery was ignored; its first delivery was accepted', { id: input.id, retryNum: input.retryNum });
      return;
    }
    seen.set(input.id, receivedAt);
    if (seen.size > SEEN_LIMIT) seen.delete(seen.keys().next().value as string);
    const work = (async () => {
      const actor = await actorOf(input.client, input.teamId, input.userId);
      const privately = PRIVATE_ABLE.has(input.command.name) && await wantsPrivate(actor);
      const conversation = new SlackConversation(input.target, { client: input.client, statusIntervalMs, logger, requestId: input.id, ...(privately ? { privately } : {}) });
      const request: BotRequest = { id: input.id, actor, channelId: input.target.channelId, command: input.command, receivedAt };
      try {
        await bot.handle(request, conversation);
      } catch (error) {
        logger.error('slack: bot.handle failed', { id: input.id, error: String(error) });
        if (!conversation.finished) await conversation.finish(errorReply(error));
      }
    })().catch((error: unknown) => logger.error('slack: a request failed', { id: input.id, error: slackError(error) ?? String(error) }));
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  }

  // slash commands: ack first, then parse; a parse error is an ephemeral answer that never reaches bot/
  const slash = (name: (typeof SLASH_COMMANDS)[number], translate: (text: string, channelId: string) => BotCommand) => {
    app.command(name, async ({ command, ack, respond, client, context }) => {
      await ack();
      let botCommand: BotCommand;
      try {
        botCommand = translate(command.text ?? '', command.channel_id);
      } catch (error) {
        await answer(respond, failureText(error));
        return;
      }
      accept({
        id: command.trigger_id, retryNum: context.retryNum, teamId: command.team_id, userId: command.user_id, command: botCommand, client,
        target: { channelId: command.channel_id, userId: command.user_id, respond, responseUrl: command.response_url },
      });
    });
  };
  slash('/imagine', (text) => ({ name: 'imagine', options: parseImagine(text) }));
  slash('/pictalk', (text) => parsePictalk(text));
  slash('/pictalk-quota', (text) => parseQuota(text));
  slash('/pictalk-caption', (text, channelId) => parseAutoCaption(text, channelId));

  // the message shortcut "Caption image"
  app.shortcut(SHORTCUT_CAPTION, async ({ shortcut, ack, respond, client, context }) => {
    await ack();
    if (shortcut.type !== 'message_action') return;
    const files = ((shortcut.message as { files?: SlackFile[] }).files ?? []);
    const image = files.find(isImageFile);
    if (!image) {
      const first = files[0];
      await answer(respond, first
        ? `⚠️ \`${fileName(first)}\` is not an image (${first.mimetype ?? 'unknown type'}); pictalk can caption PNG, JPEG, WebP or GIF images.`
        : '⚠️ That message has no image to caption.');
      return;
    }
    const message = shortcut.message as { ts: string; thread_ts?: string };
    accept({
      id: shortcut.trigger_id, retryNum: context.retryNum, teamId: shortcut.team?.id ?? shortcut.user.team_id ?? '', userId: shortcut.user.id, client,
      command: { name: 'caption', attachment: toBotAttachment(image, botToken) },
      target: { channelId: shortcut.channel.id, userId: shortcut.user.id, threadTs: message.thread_ts ?? message.ts, respond, responseUrl: shortcut.response_url },
    });
  });

  // auto-captioning: images shared in channels where a moderator turned it on (events are acked by Bolt itself)
  app.event('message', async ({ event, body, client, context }) => {
    const message = event as { subtype?: string; bot_id?: string; user?: string; channel: string; ts: string; thread_ts?: string; files?: SlackFile[] };
    if ((message.subtype !== undefined && message.subtype !== 'file_share') || message.bot_id || !message.user) return;
    // Documents and other files shared in the channel are none of pictalk's business: only images are captioned.
    const image = (message.files ?? []).find(isImageFile);
    if (!image) return;
    const teamId = (body as { team_id?: string }).team_id ?? context.teamId ?? '';
    if (!(await bot.isAutoCaptionChannel?.(teamId, message.channel))) return;
    accept({
      id: (body as { event_id: string }).event_id, retryNum: context.retryNum, teamId, userId: message.user, client,
      // auto: nobody asked, so a picture the captioner cannot describe reliably gets no reply at all
      command: { name: 'caption', attachment: toBotAttachment(image, botToken), auto: true },
      target: { channelId: message.channel, userId: message.user, threadTs: message.thread_ts ?? message.ts },
    });
  });

  // buttons: Re-roll, Vary (one per image: `pictalk.vary.<n>`), Delete (on results) and Cancel (on status messages)
  app.action(new RegExp(`^${ACTION_PREFIX.replace('.', '\\.')}(${BUTTON_ACTIONS.join('|')})(\\.\\d+)?$`), async ({ action, body, ack, respond, client, context }) => {
    await ack();
    if (body.type !== 'block_actions' || action.type !== 'button' || !('action_id' in action)) return;
    const verb = action.action_id.slice(ACTION_PREFIX.length).split('.')[0] as ButtonAction;
    const command = buttonCommand(verb, action.value ?? '');
    if (!command) return; // a button without its job (not one pictalk made) does nothing
    const channelId = body.channel?.id ?? body.container?.channel_id ?? '';
    const target: SlackTarget = { channelId, userId: body.user.id, respond, ...('response_url' in body && typeof body.response_url === 'string' ? { responseUrl: body.response_url } : {}) };
    const messageTs = body.container?.message_ts ?? body.message?.ts;
    if (messageTs) target.buttonMessage = { channelId, ts: messageTs };
    accept({
      id: body.trigger_id, retryNum: context.retryNum, teamId: body.team?.id ?? body.user.team_id ?? '', userId: body.user.id, client,
      command, target,
    });
  });

  app.error(async (error) => {
    logger.error('slack: a listener failed', { error: String((error as Error)?.stack ?? error) });
  });

  const started = await app.start(options.port ?? 3000);
  const port = mode === 'http' ? ((started as Server).address() as AddressInfo | null)?.port : undefined;
  logger.info('slack: ready', { mode, ...(port !== undefined ? { port } : {}) });

  return {
    app,
    mode,
    ...(port !== undefined ? { port } : {}),
    reconnect: (route, requestId) => reconnectSlack(route, { client: app.client, statusIntervalMs, logger, requestId }),
    async stop(drainMs = 5000) {
      await app.stop();
      if (inFlight.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise((resolve) => { timer = setTimeout(resolve, drainMs); }),
      ]);
      clearTimeout(timer);
    },
  };
}

