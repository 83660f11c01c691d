/**
 * A fake Slack that the real Bolt app runs against, on one local port:
 * - the Web API at `/api/<method>` (form, JSON or multipart bodies; `{ok: true, ...}` or `{ok: false, error}`; the
 *   token from the `Authorization: Bearer` header or the `token` field) for what pictalk uses;
 * - the v2 upload: files.getUploadURLExternal hands out `/upload/v1/<file_id>`, which stores the POSTed bytes (raw or
 *   multipart), and files.completeUploadExternal shares them into a channel or thread;
 * - private file downloads at `url_private_download`, which need the bot token (without it: Slack's sign-in page);
 * - response_url endpoints (what Bolt's `respond()` posts to);
 * - Socket Mode (see `fake-slack.socket.ts`), and a 429 with Retry-After on demand.
 *
 * Start it with `await FakeSlack.start()`, give the app `fake.apiUrl` (Bolt `clientOptions.slackApiUrl`) and the
 * fake's tokens, then drive it with `slashCommand`, `messageShortcut`, `buttonPress`, `shareFile`.
 * @see https://docs.slack.dev/reference/methods
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeSocketMode } from './fake-slack.socket.js';
import {
  blockActionPayload,
  messageEventPayload,
  messageShortcutPayload,
  nextId,
  nextTs,
  slashCommandPayload,
  type FakeFileObject,
  type FakeUser,
  type FakeUserMessage,
  type SlackContext,
} from './fake-slack.payloads.js';

/** One Web API call as the fake saw it. */
export interface ApiCall {
  at: number;
  method: string;
  args: Record<string, unknown>;
  token?: string;
  status: number;
  /** `error` of an `ok: false` answer. */
  error?: string;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  user: string;
  text: string;
  blocks?: unknown[];
  /** What chat.postMessage posted, before any edit. */
  original?: { text: string; blocks?: unknown[] };
  files?: string[];
  deleted: boolean;
  /** Every chat.update, in order. */
  edits: Array<{ at: number; text: string; blocks?: unknown[] }>;
  postedAt: number;
}

export interface FakeUpload {
  id: string;
  filename: string;
  length: number;
  alt_text?: string;
  data?: Buffer;
  contentType?: string;
  /** How the bytes came: `raw` body or a `multipart` part. */
  encoding?: 'raw' | 'multipart';
  title?: string;
  shared?: { channel_id?: string; thread_ts?: string; initial_comment?: string };
  deleted: boolean;
}

export interface Completion {
  at: number;
  channel_id?: string;
  thread_ts?: string;
  initial_comment?: string;
  files: Array<{ id: string; title?: string }>;
}

export interface Ephemeral {
  at: number;
  via: 'chat.postEphemeral' | 'response_url';
  /** The response_url's path, for an answer through one (each command, shortcut or button has its own). */
  path?: string;
  channel?: string;
  user?: string;
  text: string;
  body: Record<string, unknown>;
}

export interface Download {
  fileId: string;
  authorized: boolean;
  at: number;
  /** Chunked downloads: bytes written before the end or the client's abort. */
  bytesSent?: number;
  closedEarly?: boolean;
}

export interface FakeSlackOptions {
  botToken?: string;
  appToken?: string;
  pingIntervalMs?: number;
}

interface Channel { id: string; name: string; members: Set<string> }

class ApiError extends Error {
  constructor(readonly error: string) {
    super(error);
  }
}

const MIME: Record<string, [string, string]> = {
  png: ['image/png', 'png'], jpg: ['image/jpeg', 'jpg'], jpeg: ['image/jpeg', 'jpg'], gif: ['image/gif', 'gif'],
  webp: ['image/webp', 'webp'], ogg: ['audio/ogg', 'ogg'], pdf: ['application/pdf', 'pdf'], txt: ['text/plain', 'text'],
};
const mimeOf = (name: string): [string, string] => MIME[/\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? ''] ?? ['application/octet-stream', 'binary'];

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** multipart/form-data parts: name, filename, content type, bytes. */
export function parseMultipart(body: Buffer, boundary: string): Array<{ name: string; filename?: string; contentType?: string; data: Buffer }> {
  const parts: Array<{ name: string; filename?: string; contentType?: string; data: Buffer }> = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let start = body.indexOf(delimiter);
  while (start >= 0) {
    const next = body.indexOf(delimiter, start + delimiter.length);
    if (next < 0) break;
    const part = body.subarray(start + delimiter.length + 2, next - 2); // skip CRLF after the delimiter, before the next
    const split = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, split).toString('utf8');
    const name = /name="([^"]*)"/.exec(head)?.[1] ?? '';
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    const contentType = /content-type:\s*([^\r\n]+)/i.exec(head)?.[1];
    parts.push({ name, data: part.subarray(split + 4), ...(filename !== undefined ? { filename } : {}), ...(contentType ? { contentType } : {}) });
    start = next;
  }
  return parts;
}

export class FakeSlack implements SlackContext {
  readonly botToken: string;
  readonly appToken: string;
  readonly signingSecret = 'fake-signing-secret';
  readonly verificationToken = 'fake-verification-token';
  readonly teamId = 'T0PICTALK';
  readonly teamDomain = 'pictalk-test';
  readonly appId = 'A0PICTALK';
  readonly botUserId = 'U0PICTBOT';
  readonly botId = 'B0PICTBOT';
  readonly users: { alice: FakeUser; bob: FakeUser; admin: FakeUser; owner: FakeUser };
  readonly channels: { general: Channel; art: Channel; outside: Channel };
  /** Direct-message channels that conversations.open made, by user id (pictalk's private replies with files). */
  readonly directMessages = new Map<string, Channel>();
  /** Workspace members besides the four named ones (`addUser`): users.info knows them. */
  private readonly members = new Map<string, FakeUser>();
  readonly calls: ApiCall[] = [];
  readonly messages: FakeMessage[] = [];
  readonly uploads = new Map<string, FakeUpload>();
  readonly completions: Completion[] = [];
  readonly ephemerals: Ephemeral[] = [];
  /** Settable: Slack honours a response_url for 30 minutes and 5 uses; later posts get 404 `expired_url`. */
  responseUrlLifetimeMs = 30 * 60_000;
  private readonly responseUrls = new Map<string, { issuedAt: number; uses: number }>();
  readonly downloads: Download[] = [];
  readonly socket: FakeSocketMode;
  private readonly hosted = new Map<string, { file: FakeFileObject; data: Buffer; chunked: boolean }>();
  private readonly rateLimits: Array<{ method: string; remaining: number; retryAfterSec: number }> = [];
  private readonly holds: Array<{ method: string; when: (args: Record<string, unknown>) => boolean; arrived: (call: ApiCall) => void }> = [];
  private server!: Server;
  baseUrl = '';

  private constructor(options: FakeSlackOptions) {
    this.botToken = options.botToken ?? 'xoxb-fake-bot-token';
    this.appToken = options.appToken ?? 'xapp-1-fake-app-token';
    const user = (id: string, name: string, is_admin = false, is_owner = false): FakeUser => ({ id, name, is_admin, is_owner });
    this.users = { alice: user('U0ALICE', 'alice'), bob: user('U0BOB', 'bob'), admin: user('U0ADMIN', 'ada', true), owner: user('U0OWNER', 'olga', true, true) };
    const everyone = [this.botUserId, ...Object.values(this.users).map((u) => u.id)];
    this.channels = {
      general: { id: 'C0GENERAL', name: 'general', members: new Set(everyone) },
      art: { id: 'C0ART', name: 'art', members: new Set(everyone) },
      // The app was never invited here.
      outside: { id: 'C0OUTSIDE', name: 'outside', members: new Set(everyone.filter((id) => id !== this.botUserId)) },
    };
    this.socket = new FakeSocketMode(this.appId, options.pingIntervalMs);
  }

  static async start(options: FakeSlackOptions = {}): Promise<FakeSlack> {
    const fake = new FakeSlack(options);
    fake.server = createServer((req, res) => {
      fake.route(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(error));
      });
    });
    fake.server.on('upgrade', (req, socket, head) => fake.socket.handleUpgrade(req, socket, head as Buffer));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  responseUrl(): string {
    const path = `/commands/${this.teamId}/${randomUUID()}`;
    this.responseUrls.set(path, { issuedAt: Date.now(), uses: 0 });
    return `${this.baseUrl}${path}`;
  }

  async stop(): Promise<void> {
    await this.socket.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- test controls -------------------------------------------------------------------------------------------

  /** The next `times` calls of `method` answer HTTP 429 with `Retry-After: retryAfterSec`. */
  rateLimit(method: string, times = 1, retryAfterSec = 1): void {
    this.rateLimits.push({ method, remaining: times, retryAfterSec });
  }

  /**
   * Hold the next call of `method` whose arguments `when` accepts: neither carried out nor answered, like a request
   * that never completes, until its connection closes (its sender died); it stays in `calls` with status 0. Resolves
   * with the call once it arrives.
   */
  holdNext(method: string, when: (args: Record<string, unknown>) => boolean = () => true): Promise<ApiCall> {
    return new Promise((arrived) => { this.holds.push({ method, when, arrived }); });
  }

  /**
   * A file a user uploaded to Slack. `reportedSize` lets the file object lie about its size; `chunked` serves it
   * without Content-Length, so only counting the stream can catch an oversized one.
   */
  /** A workspace member besides the four named ones, known to users.info and a member of every channel. */
  addUser(user: FakeUser): FakeUser {
    this.members.set(user.id, user);
    for (const channel of Object.values(this.channels)) if (channel.members.has(this.botUserId)) channel.members.add(user.id);
    return user;
  }

  hostFile(name: string, data: Buffer, options: { mimetype?: string; reportedSize?: number; chunked?: boolean; owner?: string } = {}): FakeFileObject {
    const { mimetype = mimeOf(name)[0], reportedSize = data.length, chunked = false, owner = this.users.alice.id } = options;
    const id = nextId('F');
    const file: FakeFileObject = {
      id, name, title: name, mimetype, filetype: mimeOf(name)[1], size: reportedSize, user: owner,
      created: Math.floor(Date.now() / 1000), is_public: true, mode: 'hosted', is_external: false,
      url_private: `${this.baseUrl}/files-pri/${this.teamId}-${id}/${encodeURIComponent(name)}`,
      url_private_download: `${this.baseUrl}/files-pri/${this.teamId}-${id}/download/${encodeURIComponent(name)}`,
      permalink: `https://${this.teamDomain}.slack.com/files/${owner}/${id}/${encodeURIComponent(name)}`,
    };
    this.hosted.set(id, { file, data, chunked });
    return file;
  }

  /** A user's message in a channel (with files: a `file_share`), stored like any other message. */
  userMessage(user: FakeUser, channel: Channel, text: string, files: FakeFileObject[] = [], threadTs?: string): FakeUserMessage {
    const ts = nextTs();
    const message: FakeUserMessage = { type: 'message', user: user.id, ts, text, ...(threadTs ? { thread_ts: threadTs } : {}) };
    if (files.length > 0) {
      message.subtype = 'file_share';
      message.files = files;
    }
    this.messages.push({ channel: channel.id, ts, user: user.id, text, deleted: false, edits: [], postedAt: Date.now(), files: files.map((f) => f.id), ...(threadTs ? { thread_ts: threadTs } : {}) });
    return message;
  }

  slashCommand(command: string, text: string, user: FakeUser = this.users.alice, channel: Channel = this.channels.general): Record<string, string> {
    return slashCommandPayload(this, command, text, user, channel);
  }

  messageShortcut(callbackId: string, message: FakeUserMessage, user: FakeUser = this.users.alice, channel: Channel = this.channels.general): Record<string, unknown> {
    return messageShortcutPayload(this, callbackId, message, user, channel);
  }

  /** A press of the button `actionId` on the app's message `message`. */
  buttonPress(message: FakeMessage, actionId: string, user: FakeUser = this.users.alice): Record<string, unknown> {
    const element = (message.edits.at(-1)?.blocks ?? message.blocks ?? [])
      .flatMap((block) => ((block as { elements?: Array<{ action_id?: string; value?: string }> }).elements ?? []))
      .find((e) => e.action_id === actionId);
    if (!element) throw new Error(`fake Slack: message ${message.ts} has no button ${actionId}`);
    const channel = Object.values(this.channels).find((c) => c.id === message.channel)!;
    return blockActionPayload(this, { action_id: actionId, value: element.value ?? '' }, { ts: message.ts, text: message.text, blocks: message.blocks }, user, channel);
  }

  /** A `message` event (subtype `file_share`) for a user's message. */
  messageEvent(message: FakeUserMessage, channel: Channel = this.channels.general): Record<string, unknown> {
    return messageEventPayload(this, message, channel);
  }

  callsOf(method: string): ApiCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  message(channel: string, ts: string): FakeMessage | undefined {
    return this.messages.find((m) => m.channel === channel && m.ts === ts);
  }

  /** The app's messages in a thread (replies only), oldest first. */
  threadReplies(channel: string, threadTs: string): FakeMessage[] {
    return this.messages.filter((m) => m.channel === channel && m.thread_ts === threadTs && m.ts !== threadTs);
  }

  async waitFor<T>(probe: () => T | undefined | false | null, timeoutMs = 10_000, what = 'a condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`fake Slack: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  // --- HTTP ----------------------------------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const method = req.method ?? 'GET';
    if (method === 'POST' && url.pathname.startsWith('/api/')) return this.api(url.pathname.slice('/api/'.length), req, res);
    if (method === 'POST' && url.pathname.startsWith('/upload/v1/')) return this.receiveUpload(url.pathname.slice('/upload/v1/'.length), req, res);
    if (method === 'POST' && url.pathname.startsWith('/commands/')) return this.receiveResponseUrl(url.pathname, req, res);
    if (method === 'GET' && url.pathname.startsWith('/files-pri/')) return this.serveFile(url.pathname, req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  }

  private async args(req: IncomingMessage): Promise<Record<string, unknown>> {
    const body = await readBody(req);
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('application/json')) return body.length ? JSON.parse(body.toString('utf8')) as Record<string, unknown> : {};
    if (type.startsWith('multipart/form-data')) {
      const boundary = /boundary=(.+)$/.exec(type)?.[1] ?? '';
      return Object.fromEntries(parseMultipart(body, boundary).map((part) => [part.name, part.filename !== undefined ? part.data : part.data.toString('utf8')]));
    }
    return Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  }

  private async api(method: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const args = await this.args(req);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ?? (typeof args.token === 'string' ? args.token : undefined);
    const call: ApiCall = { at: Date.now(), method, args, status: 200, ...(token ? { token } : {}) };
    this.calls.push(call);
    const held = this.holds.findIndex((rule) => rule.method === method && rule.when(args));
    if (held >= 0) {
      const [rule] = this.holds.splice(held, 1);
      call.status = 0;
      await new Promise<void>((closed) => { req.socket.once('close', () => closed()); rule!.arrived(call); });
      return;
    }
    const limit = this.rateLimits.find((rule) => rule.method === method && rule.remaining > 0);
    if (limit) {
      limit.remaining -= 1;
      call.status = 429;
      call.error = 'ratelimited';
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': String(limit.retryAfterSec) });
      res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
      return;
    }
    let result: Record<string, unknown>;
    try {
      result = { ok: true, ...this.dispatch(method, args, token) };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      call.error = error.error;
      result = { ok: false, error: error.error };
    }
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(result));
  }

  private channel(id: unknown): Channel {
    const channel = [...Object.values(this.channels), ...this.directMessages.values()].find((c) => c.id === id);
    if (!channel) throw new ApiError('channel_not_found');
    return channel;
  }

  private member(id: unknown): Channel {
    const channel = this.channel(id);
    if (!channel.members.has(this.botUserId)) throw new ApiError('not_in_channel');
    return channel;
  }

  private ownMessage(channel: unknown, ts: unknown): FakeMessage {
    const message = this.messages.find((m) => m.channel === channel && m.ts === ts && !m.deleted);
    if (!message) throw new ApiError('message_not_found');
    if (message.user !== this.botUserId) throw new ApiError('cant_update_message');
    return message;
  }

  private dispatch(method: string, args: Record<string, unknown>, token: string | undefined): Record<string, unknown> {
    if (!token) throw new ApiError('not_authed');
    // Socket Mode's one method takes the app-level token; every other one here the bot token.
    if (method === 'apps.connections.open') {
      if (token === this.botToken) throw new ApiError('not_allowed_token_type');
      if (token !== this.appToken) throw new ApiError('invalid_auth');
      return { url: this.socket.issueUrl(this.baseUrl.replace(/^http/, 'ws')) };
    }
    if (token === this.appToken) throw new ApiError('not_allowed_token_type');
    if (token !== this.botToken) throw new ApiError('invalid_auth');
    const blocks = (value: unknown) => this.checkBlocks(typeof value === 'string' ? JSON.parse(value) as unknown[] : value as unknown[] | undefined);
    switch (method) {
      case 'auth.test':
        return { url: `https://${this.teamDomain}.slack.com/`, team: 'pictalk test', user: 'pictalk', team_id: this.teamId, user_id: this.botUserId, bot_id: this.botId, is_enterprise_install: false };
      case 'users.info': {
        const user = [...Object.values(this.users), ...this.members.values()].find((u) => u.id === args.user);
        if (!user) throw new ApiError('user_not_found');
        return {
          user: {
            id: user.id, team_id: this.teamId, name: user.name, deleted: false, real_name: user.name, is_bot: false,
            is_admin: user.is_admin, is_owner: user.is_owner, is_primary_owner: user.is_owner, is_restricted: false,
            profile: { display_name: user.name, real_name: user.name },
          },
        };
      }
      case 'conversations.open': {
        // one user: the app's direct message with them (the same channel every time)
        const id = String(args.users ?? '');
        if (id === '' || id.includes(',')) throw new ApiError(id === '' ? 'users_list_not_supplied' : 'not_implemented');
        if (![...Object.values(this.users), ...this.members.values()].some((u) => u.id === id)) throw new ApiError('user_not_found');
        let dm = this.directMessages.get(id);
        if (!dm) {
          dm = { id: `D0${id.slice(1)}`, name: `dm-${id}`, members: new Set([this.botUserId, id]) };
          this.directMessages.set(id, dm);
        }
        return { channel: { id: dm.id } };
      }
      case 'conversations.info': {
        const channel = this.channel(args.channel);
        return { channel: { id: channel.id, name: channel.name, is_channel: true, is_member: channel.members.has(this.botUserId) } };
      }
      case 'chat.postMessage': {
        const channel = this.member(args.channel);
        if (!args.text && !args.blocks) throw new ApiError('no_text');
        const message: FakeMessage = {
          channel: channel.id, ts: nextTs(), user: this.botUserId, text: String(args.text ?? ''), deleted: false, edits: [], postedAt: Date.now(),
          ...(args.blocks ? { blocks: blocks(args.blocks) } : {}),
          ...(args.thread_ts ? { thread_ts: String(args.thread_ts) } : {}),
        };
        message.original = { text: message.text, ...(message.blocks ? { blocks: message.blocks } : {}) };
        this.messages.push(message);
        return { channel: channel.id, ts: message.ts, message: { type: 'message', user: this.botUserId, bot_id: this.botId, text: message.text, ts: message.ts, blocks: message.blocks } };
      }
      case 'chat.update': {
        const message = this.ownMessage(args.channel, args.ts);
        message.text = String(args.text ?? message.text);
        const newBlocks = args.blocks ? blocks(args.blocks) : message.blocks;
        if (newBlocks) message.blocks = newBlocks;
        message.edits.push({ at: Date.now(), text: message.text, ...(newBlocks ? { blocks: newBlocks } : {}) });
        return { channel: message.channel, ts: message.ts, text: message.text, message: { text: message.text, user: this.botUserId, bot_id: this.botId, blocks: message.blocks } };
      }
      case 'chat.delete': {
        const message = this.ownMessage(args.channel, args.ts);
        message.deleted = true;
        return { channel: message.channel, ts: message.ts };
      }
      case 'chat.postEphemeral': {
        const channel = this.member(args.channel);
        if (!channel.members.has(String(args.user))) throw new ApiError('user_not_in_channel');
        this.ephemerals.push({ at: Date.now(), via: 'chat.postEphemeral', channel: channel.id, user: String(args.user), text: String(args.text ?? ''), body: args });
        return { message_ts: nextTs() };
      }
      case 'files.getUploadURLExternal': {
        const length = Number(args.length);
        if (typeof args.filename !== 'string' || args.filename === '' || !Number.isInteger(length) || length <= 0) throw new ApiError('invalid_arguments');
        const id = nextId('F');
        this.uploads.set(id, { id, filename: args.filename, length, deleted: false, ...(typeof args.alt_text === 'string' ? { alt_text: args.alt_text } : {}) });
        return { upload_url: `${this.baseUrl}/upload/v1/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const files = (typeof args.files === 'string' ? JSON.parse(args.files) : args.files) as Array<{ id: string; title?: string }> | undefined;
        if (!Array.isArray(files) || files.length === 0) throw new ApiError('invalid_arguments');
        for (const entry of files) {
          const upload = this.uploads.get(entry.id);
          if (!upload || !upload.data) throw new ApiError('file_not_found');
          // Slack checks the bytes against the length promised in getUploadURLExternal.
          if (upload.data.length !== upload.length) throw new ApiError('file_upload_size_mismatch');
        }
        const share: FakeUpload['shared'] = {};
        if (args.channel_id !== undefined) {
          this.member(args.channel_id);
          share.channel_id = String(args.channel_id);
        }
        if (args.thread_ts !== undefined) share.thread_ts = String(args.thread_ts);
        if (args.initial_comment !== undefined) share.initial_comment = String(args.initial_comment);
        this.completions.push({ at: Date.now(), files, ...share });
        for (const entry of files) {
          const upload = this.uploads.get(entry.id)!;
          upload.shared = share;
          if (entry.title !== undefined) upload.title = entry.title;
        }
        if (share.channel_id) {
          this.messages.push({
            channel: share.channel_id, ts: nextTs(), user: this.botUserId, text: share.initial_comment ?? '', files: files.map((f) => f.id),
            deleted: false, edits: [], postedAt: Date.now(), ...(share.thread_ts ? { thread_ts: share.thread_ts } : {}),
          });
        }
        return {
          files: files.map((entry) => {
            const upload = this.uploads.get(entry.id)!;
            const [mimetype, filetype] = mimeOf(upload.filename);
            return { id: upload.id, name: upload.filename, title: upload.title ?? upload.filename, mimetype, filetype, size: upload.length, user: this.botUserId };
          }),
        };
      }
      case 'files.delete': {
        const upload = this.uploads.get(String(args.file));
        if (!upload) throw new ApiError('file_not_found');
        if (upload.deleted) throw new ApiError('file_deleted');
        upload.deleted = true;
        return {};
      }
      default:
        throw new ApiError('unknown_method');
    }
  }

  /**
   * Blocks as Slack checks them where it matters here: an image block shows a `slack_file` that exists, is not
   * deleted, was completed, and is a PNG, JPEG or GIF; otherwise the call fails with `invalid_blocks`.
   * @see https://docs.slack.dev/reference/block-kit/composition-objects/slack-file-object
   */
  private checkBlocks(list: unknown[] | undefined): unknown[] | undefined {
    for (const block of list ?? []) {
      const { type, slack_file: file, image_url: url, alt_text: alt } = block as { type?: string; slack_file?: { id?: string; url?: string }; image_url?: string; alt_text?: string };
      if (type !== 'image') continue;
      if (typeof alt !== 'string' || alt === '' || (file === undefined) === (url === undefined)) throw new ApiError('invalid_blocks');
      if (file) {
        const upload = file.id ? this.uploads.get(file.id) : undefined;
        if (!upload || upload.deleted || !upload.data || !/\.(png|jpe?g|gif)$/i.test(upload.filename)) throw new ApiError('invalid_blocks');
        if (!this.completions.some((c) => c.files.some((f) => f.id === upload.id))) throw new ApiError('invalid_blocks');
      }
    }
    return list;
  }

  /** The upload URL: the bytes as the raw body or as one multipart part (WebClient sends multipart, field `body`). */
  private async receiveUpload(id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const upload = this.uploads.get(id);
    const body = await readBody(req);
    if (!upload) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('file not found');
      return;
    }
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const [part] = parseMultipart(body, /boundary=(.+)$/.exec(type)?.[1] ?? '');
      upload.data = part?.data ?? Buffer.alloc(0);
      upload.encoding = 'multipart';
      if (part?.contentType) upload.contentType = part.contentType;
    } else {
      upload.data = body;
      upload.encoding = 'raw';
      if (type) upload.contentType = type;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`OK - ${upload.data.length}`);
  }

  private async receiveResponseUrl(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as Record<string, unknown>;
    const issued = this.responseUrls.get(path);
    if (!issued || Date.now() - issued.issuedAt > this.responseUrlLifetimeMs || issued.uses >= 5) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('expired_url');
      return;
    }
    issued.uses += 1;
    if (body.response_type === 'in_channel') {
      this.messages.push({ channel: '', ts: nextTs(), user: this.botUserId, text: String(body.text ?? ''), deleted: false, edits: [], postedAt: Date.now() });
    } else {
      this.ephemerals.push({ at: Date.now(), via: 'response_url', path, text: String(body.text ?? ''), body });
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ ok: true }));
  }

  private serveFile(path: string, req: IncomingMessage, res: ServerResponse): void {
    const id = /^\/files-pri\/[^-]+-([^/]+)\//.exec(path)?.[1] ?? '';
    const hosted = this.hosted.get(id);
    const authorized = req.headers.authorization === `Bearer ${this.botToken}`;
    this.downloads.push({ fileId: id, authorized, at: Date.now() });
    if (!hosted) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('file not found');
      return;
    }
    if (!authorized) {
      // What Slack does without a valid token: 200 with its sign-in page, not an error status.
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to continue</body></html>');
      return;
    }
    if (!hosted.chunked) {
      res.writeHead(200, { 'Content-Type': hosted.file.mimetype, 'Content-Length': String(hosted.data.length) });
      res.end(hosted.data);
      return;
    }
    res.writeHead(200, { 'Content-Type': hosted.file.mimetype });
    const download = this.downloads.at(-1)!;
    const write = (offset: number): void => {
      if (offset >= hosted.data.length || res.destroyed) {
        download.bytesSent = offset;
        res.end();
        return;
      }
      download.bytesSent = offset;
      res.write(hosted.data.subarray(offset, offset + 16 * 1024), () => setImmediate(() => write(offset + 16 * 1024)));
    };
    res.on('close', () => { download.closedEarly = !res.writableFinished; });
    write(0);
  }
}
