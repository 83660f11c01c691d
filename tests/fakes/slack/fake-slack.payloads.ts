/**
 * Slack's inbound payload shapes, as Slack sends them to an app (over Socket Mode or HTTP), and the request signing
 * of HTTP mode. Shapes follow Slack's reference pages; only fields pictalk or Bolt read are guaranteed here.
 * @see https://docs.slack.dev/interactivity/implementing-slash-commands#app_command_handling
 * @see https://docs.slack.dev/reference/interaction-payloads/shortcuts-interaction-payload
 * @see https://docs.slack.dev/reference/interaction-payloads/block_actions-payload
 * @see https://docs.slack.dev/apis/events-api/#callback-field
 * @see https://docs.slack.dev/authentication/verifying-requests-from-slack
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface FakeUser {
  id: string;
  name: string;
  is_admin: boolean;
  is_owner: boolean;
}

/** A file object as message events, shortcut payloads and files.info carry it. */
export interface FakeFileObject {
  id: string;
  name: string;
  title: string;
  mimetype: string;
  filetype: string;
  size: number;
  user: string;
  url_private: string;
  url_private_download: string;
  [key: string]: unknown;
}

export interface FakeUserMessage {
  type: 'message';
  user: string;
  ts: string;
  text: string;
  thread_ts?: string;
  files?: FakeFileObject[];
  subtype?: string;
}

let counter = 0;
export const nextId = (prefix: string): string => `${prefix}${(++counter).toString(36).toUpperCase().padStart(8, '0')}`;
export const triggerId = (): string => `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(8).toString('hex')}`;

/** Message timestamps are unique per channel: seconds.micro-sequence. */
let tsCounter = 0;
export const nextTs = (): string => `${Math.floor(Date.now() / 1000)}.${String(++tsCounter).padStart(6, '0')}`;

export interface SlackContext {
  teamId: string;
  teamDomain: string;
  appId: string;
  botUserId: string;
  verificationToken: string;
  responseUrl(): string;
}

/** A slash command as Slack posts it (form fields; over Socket Mode the same fields as a JSON object). */
export function slashCommandPayload(ctx: SlackContext, command: string, text: string, user: FakeUser, channel: { id: string; name: string }): Record<string, string> {
  return {
    token: ctx.verificationToken,
    team_id: ctx.teamId,
    team_domain: ctx.teamDomain,
    channel_id: channel.id,
    channel_name: channel.name,
    user_id: user.id,
    user_name: user.name,
    command,
    text,
    api_app_id: ctx.appId,
    is_enterprise_install: 'false',
    response_url: ctx.responseUrl(),
    trigger_id: triggerId(),
  };
}

/** A message shortcut (type `message_action`) on `message`. */
export function messageShortcutPayload(ctx: SlackContext, callbackId: string, message: FakeUserMessage, user: FakeUser, channel: { id: string; name: string }): Record<string, unknown> {
  return {
    type: 'message_action',
    token: ctx.verificationToken,
    action_ts: `${Date.now() / 1000}`,
    team: { id: ctx.teamId, domain: ctx.teamDomain },
    user: { id: user.id, username: user.name, team_id: ctx.teamId, name: user.name },
    channel: { id: channel.id, name: channel.name },
    is_enterprise_install: false,
    enterprise: null,
    callback_id: callbackId,
    trigger_id: triggerId(),
    response_url: ctx.responseUrl(),
    message_ts: message.ts,
    message,
  };
}

/** A Block Kit button press on a message the app posted. */
export function blockActionPayload(
  ctx: SlackContext,
  action: { action_id: string; value: string; block_id?: string; text?: string },
  message: { ts: string; text?: string; blocks?: unknown },
  user: FakeUser,
  channel: { id: string; name: string },
): Record<string, unknown> {
  return {
    type: 'block_actions',
    user: { id: user.id, username: user.name, name: user.name, team_id: ctx.teamId },
    api_app_id: ctx.appId,
    token: ctx.verificationToken,
    container: { type: 'message', message_ts: message.ts, channel_id: channel.id, is_ephemeral: false },
    trigger_id: triggerId(),
    team: { id: ctx.teamId, domain: ctx.teamDomain },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channel.id, name: channel.name },
    message: { type: 'message', user: ctx.botUserId, ts: message.ts, text: message.text ?? '', blocks: message.blocks ?? [] },
    state: { values: {} },
    response_url: ctx.responseUrl(),
    actions: [{
      action_id: action.action_id,
      block_id: action.block_id ?? 'pictalk_buttons',
      text: { type: 'plain_text', text: action.text ?? action.action_id, emoji: true },
      value: action.value,
      type: 'button',
      action_ts: `${Date.now() / 1000}`,
    }],
  };
}

/** An Events API callback wrapping one `message` event (a user sharing a file: subtype `file_share`). */
export function messageEventPayload(ctx: SlackContext, message: FakeUserMessage, channel: { id: string }): Record<string, unknown> {
  return {
    token: ctx.verificationToken,
    team_id: ctx.teamId,
    context_team_id: ctx.teamId,
    api_app_id: ctx.appId,
    event: { ...message, channel: channel.id, channel_type: 'channel', event_ts: message.ts },
    type: 'event_callback',
    event_id: nextId('Ev'),
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: ctx.teamId, user_id: ctx.botUserId, is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
    event_context: `4-${randomBytes(12).toString('base64url')}`,
  };
}

export type InboundKind = 'slash_commands' | 'events_api' | 'interactive';

/** HTTP mode's body for each kind: commands are form fields, interactivity is `payload=<json>`, events are JSON. */
export function httpBody(kind: InboundKind, payload: Record<string, unknown>): { body: string; contentType: string } {
  if (kind === 'events_api') return { body: JSON.stringify(payload), contentType: 'application/json' };
  if (kind === 'interactive') return { body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), contentType: 'application/x-www-form-urlencoded' };
  return { body: new URLSearchParams(payload as Record<string, string>).toString(), contentType: 'application/x-www-form-urlencoded' };
}

/** `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret. */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SignedSendOptions {
  secret: string;
  /** Seconds since epoch; now by default. */
  timestamp?: number;
  /** Sign with a wrong secret. */
  badSignature?: boolean;
  retryNum?: number;
  retryReason?: string;
}

export interface SignedResponse {
  status: number;
  body: string;
  elapsedMs: number;
}

/** POST an inbound request to an app in HTTP mode, signed as Slack signs it. */
export async function sendSigned(url: string, kind: InboundKind, payload: Record<string, unknown>, options: SignedSendOptions): Promise<SignedResponse> {
  const { body, contentType } = httpBody(kind, payload);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'Content-Type': contentType,
    'X-Slack-Request-Timestamp': String(timestamp),
    'X-Slack-Signature': slackSignature(options.badSignature ? `${options.secret}-wrong` : options.secret, timestamp, body),
    'User-Agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  };
  if (options.retryNum !== undefined) {
    headers['X-Slack-Retry-Num'] = String(options.retryNum);
    headers['X-Slack-Retry-Reason'] = options.retryReason ?? 'http_timeout';
  }
  const started = Date.now();
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, body: await response.text(), elapsedMs: Date.now() - started };
}

// --- test images -------------------------------------------------------------------------------------------------

export { solidPng } from '../../helpers/solid-png.js';
