/**
 * A fake Discord that the real discord.js client runs against: the REST API (`/api/v10`) for what pictalk uses, a
 * gateway websocket, and a small CDN for attachments, on one local port. It records every REST call with its parsed
 * body and uploaded files, enforces the interaction rules the real API enforces (respond within 3 s, respond once,
 * edit only after responding, voice-message shape, upload size) and can answer 429 on demand.
 *
 * Start it with `await FakeDiscord.start()`, point the client at `fake.apiUrl` (discord.js `rest.api`), log in with
 * `fake.token`, then drive it with `sendChatInput`, `sendButton`, `sendMessageCommand`, `gateway.disconnect()`.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  APIApplicationCommandInteractionDataOption,
  APIAttachment,
  APIGuildMember,
  APIInteractionDataResolved,
  APIMessage,
  APIUser,
} from 'discord.js';
import { FakeGateway } from './fake-discord.gateway.js';
import {
  MEMBER_PERMISSIONS,
  MessageFlag,
  Permission,
  attachmentObject,
  buttonInteraction,
  chatInputInteraction,
  guildCreate,
  interactionMember,
  member,
  messageCommandInteraction,
  role,
  snowflake,
  user,
  type InteractionInput,
  type StoredFile,
} from './fake-discord.payloads.js';

export interface UploadedFile {
  field: string;      // `files[0]`, ...
  name: string;
  contentType: string;
  data: Buffer;
}

/** One REST call as the fake saw it. `route` uses placeholders: `PATCH /webhooks/:app/:token/messages/@original`. */
export interface RestCall {
  at: number;
  method: string;
  path: string;
  route: string;
  status: number;
  interactionId?: string;
  body?: Record<string, unknown>;
  files: UploadedFile[];
}

export interface FakeInteraction {
  id: string;
  token: string;
  dispatchedAt: number;
  payload: Record<string, unknown>;
  /** The callback: when and of which type (5 = deferred channel message). */
  response?: { type: number; at: number; ephemeral: boolean };
  originalId?: string;
}

export interface FakeMember {
  user: APIUser;
  roleIds: string[];
  /** Channel permissions Discord computes into `member.permissions`. */
  permissions: bigint;
}

export interface FakeDiscordOptions {
  token?: string;
  applicationId?: string;
  heartbeatIntervalMs?: number;
  /** Real Discord: 3000 ms from dispatch to the initial response. */
  responseDeadlineMs?: number;
  /** `attachment_size_limit` in interactions (bytes); Discord's default for an unboosted server is 10 MiB. */
  attachmentSizeLimit?: number;
  /** Real Discord: an interaction token is valid for 15 minutes; webhook calls after that get 401 code 50027. */
  tokenLifetimeMs?: number;
  /** Port to listen on (default: any free one). */
  port?: number;
}

interface RateLimitRule { route: string; retryAfter: number; global: boolean }

class HttpError extends Error {
  constructor(readonly status: number, readonly body: Record<string, unknown>) {
    super(String(body.message));
  }
}

const unknown = (what: string, code: number) => new HttpError(404, { message: `Unknown ${what}`, code });
const invalidForm = (path: string, message: string) =>
  new HttpError(400, { message: 'Invalid Form Body', code: 50035, errors: { [path]: { _errors: [{ code: 'BASE_TYPE_INVALID', message }] } } });

export class FakeDiscord {
  readonly token: string;
  readonly applicationId: string;
  readonly guildId = snowflake();
  readonly channelId = snowflake();
  readonly moderatorRoleId = snowflake();
  readonly artistRoleId = snowflake();
  readonly botUser: APIUser;
  /** Two plain members, one with the Manage Server permission, and one with only the moderator role. */
  readonly members: { alice: FakeMember; bob: FakeMember; mod: FakeMember; roleMod: FakeMember };
  readonly gateway: FakeGateway;
  readonly calls: RestCall[] = [];
  readonly commandPuts: Array<{ guildId?: string; body: Array<Record<string, unknown>> }> = [];
  readonly interactions = new Map<string, FakeInteraction>();
  readonly messages = new Map<string, APIMessage>();
  readonly deletedMessages: string[] = [];
  private readonly files = new Map<string, StoredFile>();
  private readonly commandIds = new Map<string, string>();
  private readonly rateLimits: RateLimitRule[] = [];
  /** Settable between interactions. */
  responseDeadlineMs: number;
  /** `attachment_size_limit` of the interactions dispatched from now on; uploads over it are refused with 413. */
  attachmentSizeLimit: number;
  /** Settable: how long an interaction token works for webhook calls (follow-ups and edits). */
  tokenLifetimeMs: number;
  private server!: Server;
  baseUrl = '';

  private constructor(options: FakeDiscordOptions) {
    this.token = options.token ?? 'fake-bot-token';
    this.applicationId = options.applicationId ?? snowflake();
    this.responseDeadlineMs = options.responseDeadlineMs ?? 3000;
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? 15 * 60_000;
    this.attachmentSizeLimit = options.attachmentSizeLimit ?? 10 * 1024 * 1024;
    this.botUser = user(this.applicationId, 'pictalk', true);
    const memberOf = (name: string, roleIds: string[], permissions: bigint): FakeMember => ({ user: user(snowflake(), name), roleIds, permissions });
    this.members = {
      alice: memberOf('alice', [this.artistRoleId], MEMBER_PERMISSIONS),
      bob: memberOf('bob', [], MEMBER_PERMISSIONS),
      mod: memberOf('morgan', [], MEMBER_PERMISSIONS | Permission.ManageGuild),
      roleMod: memberOf('robin', [this.moderatorRoleId, this.artistRoleId], MEMBER_PERMISSIONS),
    };
    this.gateway = new FakeGateway({
      token: this.token,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      ready: (sessionId) => ({
        v: 10, user_settings: {}, user: this.botUser, session_type: 'normal', session_id: sessionId,
        resume_gateway_url: this.gatewayUrl, relationships: [], private_channels: [], presences: [],
        guilds: [{ id: this.guildId, unavailable: true }], guild_join_requests: [], geo_ordered_rtc_regions: [],
        application: { id: this.applicationId, flags: 0 }, shard: [0, 1], _trace: ['["fake-gateway",{"micros":0}]'],
      }),
      afterReady: () => [{ t: 'GUILD_CREATE', d: this.guildPayload() }],
    });
  }

  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(options);
    fake.server = createServer((req, res) => void fake.onRequest(req, res));
    fake.server.on('upgrade', (req, socket, head) => {
      if ((req.url ?? '').startsWith('/gateway')) fake.gateway.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
    await new Promise<void>((resolve) => fake.server.listen(options.port ?? 0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** For discord.js `rest.api`: the version is appended by the client. */
  get apiUrl(): string {
    return `${this.baseUrl}/api`;
  }

  get gatewayUrl(): string {
    return `${this.baseUrl.replace('http', 'ws')}/gateway`;
  }

  async stop(): Promise<void> {
    await this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- test controls --------------------------------------------------------------------------------------------

  /** Answer the next request on `route` with 429 and `retry_after` seconds, body and headers as Discord sends them. */
  rateLimitNext(route: string, retryAfter: number, global = false): void {
    this.rateLimits.push({ route, retryAfter, global });
  }

  /** Host a file on the fake CDN, as a user's upload; `reportedSize` lets the attachment object lie about its size. */
  hostFile(name: string, data: Buffer, contentType: string, reportedSize?: number): APIAttachment {
    const file: StoredFile = { id: snowflake(), name, contentType, data };
    this.files.set(file.id, file);
    const attachment = attachmentObject(file, this.baseUrl, this.channelId, { ephemeral: true });
    return reportedSize === undefined ? attachment : { ...attachment, size: reportedSize };
  }

  /** A message by a member, with attachments, for the "Caption image" context-menu command. */
  userMessage(author: FakeMember, content: string, attachments: APIAttachment[]): APIMessage {
    const message = this.messageObject({ id: snowflake(), author: author.user, content, attachments, type: 0, flags: 0 });
    this.messages.set(message.id, message);
    return message;
  }

  sendChatInput(
    name: string,
    options: APIApplicationCommandInteractionDataOption[] = [],
    by: FakeMember = this.members.alice,
    resolved?: APIInteractionDataResolved,
  ): FakeInteraction {
    return this.dispatchInteraction((id, token) => chatInputInteraction(this.interactionInput(by), id, token, this.command(name), options, resolved));
  }

  sendMessageCommand(name: string, target: APIMessage, by: FakeMember = this.members.alice): FakeInteraction {
    return this.dispatchInteraction((id, token) => messageCommandInteraction(this.interactionInput(by), id, token, this.command(name), target));
  }

  sendButton(customId: string, message: APIMessage, by: FakeMember = this.members.alice): FakeInteraction {
    return this.dispatchInteraction((id, token) => buttonInteraction(this.interactionInput(by), id, token, customId, message));
  }

  /** Calls on one interaction's webhook (callback, edits, follow-ups), in order. */
  callsFor(interaction: FakeInteraction, route?: string): RestCall[] {
    return this.calls.filter((call) => call.interactionId === interaction.id && (!route || call.route === route));
  }

  original(interaction: FakeInteraction): APIMessage | undefined {
    return interaction.originalId ? this.messages.get(interaction.originalId) : undefined;
  }

  async waitFor<T>(check: () => T | undefined | false | null, timeoutMs = 10_000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`fake discord: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  // ---- payloads --------------------------------------------------------------------------------------------------

  private guildPayload() {
    const everyone = role(this.guildId, '@everyone', MEMBER_PERMISSIONS, 0);
    const roles = [everyone, role(this.moderatorRoleId, 'pictalk moderators', MEMBER_PERMISSIONS, 2), role(this.artistRoleId, 'artists', MEMBER_PERMISSIONS, 1)];
    const members: APIGuildMember[] = [member(this.botUser, [])];
    return guildCreate({ guildId: this.guildId, channelId: this.channelId, ownerId: this.members.mod.user.id, roles, members });
  }

  private interactionInput(by: FakeMember): InteractionInput {
    return {
      applicationId: this.applicationId, guildId: this.guildId, channelId: this.channelId,
      member: interactionMember(member(by.user, by.roleIds), by.permissions), attachmentSizeLimit: this.attachmentSizeLimit,
    };
  }

  private command(name: string): { id: string; name: string } {
    let id = this.commandIds.get(name);
    if (!id) this.commandIds.set(name, (id = snowflake()));
    return { id, name };
  }

  private dispatchInteraction(build: (id: string, token: string) => Record<string, unknown>): FakeInteraction {
    const id = snowflake();
    // Real tokens are base64url text of `interaction:<id>:<secret>`.
    const token = Buffer.from(`interaction:${id}:${Math.random().toString(36).slice(2)}`).toString('base64url');
    const interaction: FakeInteraction = { id, token, dispatchedAt: Date.now(), payload: build(id, token) };
    this.interactions.set(id, interaction);
    this.gateway.dispatch('INTERACTION_CREATE', interaction.payload);
    return interaction;
  }

  private messageObject(fields: { id: string; author: APIUser; content: string; attachments: APIAttachment[]; type: number; flags: number; components?: unknown[]; interaction?: FakeInteraction }): APIMessage {
    const { interaction } = fields;
    const by = interaction ? (interaction.payload.member as { user: APIUser }).user : undefined;
    return {
      id: fields.id, channel_id: this.channelId, author: fields.author, content: fields.content, timestamp: new Date().toISOString(),
      edited_timestamp: null, tts: false, mention_everyone: false, mentions: [], mention_roles: [], attachments: fields.attachments,
      embeds: [], pinned: false, type: fields.type, flags: fields.flags, components: (fields.components ?? []) as APIMessage['components'],
      ...(interaction ? {
        webhook_id: this.applicationId, application_id: this.applicationId,
        interaction_metadata: { id: interaction.id, type: interaction.payload.type as 2, user: by!, authorizing_integration_owners: { 0: this.guildId } },
      } : {}),
    } as APIMessage;
  }

  // ---- HTTP ------------------------------------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname.startsWith('/attachments/')) {
      this.serveAttachment(url.pathname, res);
      return;
    }
    // discord.js percent-encodes path segments (`%40original`); routes are matched on the decoded path.
    const path = url.pathname.split('/').map(decodeURIComponent).join('/').replace(/^\/api\/v10(?=\/)/, '');
    const call: RestCall = { at: Date.now(), method, path, route: `${method} ${routeOf(path)}`, status: 0, files: [] };
    const interactionId = this.interactionIdOf(path);
    if (interactionId) call.interactionId = interactionId;
    this.calls.push(call);
    let status = 200;
    let payload: unknown;
    try {
      if (!url.pathname.startsWith('/api/v10/')) throw new HttpError(404, { message: '404: Not Found', code: 0 });
      const raw = await readBody(req);
      const parsed = await parseBody(req.headers['content-type'], raw);
      call.body = parsed.body;
      call.files = parsed.files;
      const limited = this.rateLimits.findIndex((rule) => rule.route === call.route);
      if (limited >= 0) {
        const [rule] = this.rateLimits.splice(limited, 1);
        this.sendRateLimited(res, rule!);
        call.status = 429;
        return;
      }
      const result = await this.route(method, path, url, call, req);
      status = result.status;
      payload = result.body;
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      status = error.status;
      payload = error.body;
    }
    call.status = status;
    if (status === 204) {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
  }

  /** 429 as Discord sends it: `retry_after` in seconds in the body, the same rounded up in `Retry-After`. */
  private sendRateLimited(res: ServerResponse, rule: RateLimitRule): void {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'retry-after': String(Math.ceil(rule.retryAfter)),
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': ((Date.now() / 1000) + rule.retryAfter).toFixed(3),
      'x-ratelimit-reset-after': rule.retryAfter.toFixed(3),
      'x-ratelimit-bucket': 'fake-bucket-' + rule.route.replace(/\W+/g, '-'),
      'x-ratelimit-scope': rule.global ? 'global' : 'user',
    };
    if (rule.global) headers['x-ratelimit-global'] = 'true';
    res.writeHead(429, headers).end(JSON.stringify({ message: 'You are being rate limited.', retry_after: rule.retryAfter, global: rule.global }));
  }

  private serveAttachment(pathname: string, res: ServerResponse): void {
    const [, , , id] = pathname.split('/');
    const file = id ? this.files.get(id) : undefined;
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
      return;
    }
    res.writeHead(200, { 'content-type': file.contentType, 'content-length': String(file.data.length) }).end(file.data);
  }

  /** The interaction a callback or webhook path belongs to, so even a 429 is filed under it. */
  private interactionIdOf(path: string): string | undefined {
    const [, first, second, third] = path.split('/');
    if (first === 'interactions') return this.interactions.get(second ?? '')?.id;
    if (first === 'webhooks') return [...this.interactions.values()].find((i) => i.token === third)?.id;
    return undefined;
  }

  private requireBotAuth(req: IncomingMessage): void {
    if (req.headers.authorization !== `Bot ${this.token}`) throw new HttpError(401, { message: '401: Unauthorized', code: 0 });
  }

  private interactionByToken(app: string, token: string, call: RestCall): FakeInteraction {
    if (app !== this.applicationId) throw unknown('Webhook', 10015);
    const interaction = [...this.interactions.values()].find((i) => i.token === token);
    if (!interaction) throw unknown('Webhook', 10015);
    call.interactionId = interaction.id;
    if (Date.now() - interaction.dispatchedAt > this.tokenLifetimeMs) throw new HttpError(401, { message: 'Invalid Webhook Token', code: 50027 });
    return interaction;
  }

  private async route(method: string, path: string, url: URL, call: RestCall, req: IncomingMessage): Promise<{ status: number; body?: unknown }> {
    const parts = path.split('/').slice(1);
    const route = call.route;
    if (route === 'GET /gateway/bot') {
      this.requireBotAuth(req);
      return { status: 200, body: { url: this.gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 } } };
    }
    if (route === 'GET /gateway') return { status: 200, body: { url: this.gatewayUrl } };
    if (route === 'GET /users/@me') {
      this.requireBotAuth(req);
      return { status: 200, body: this.botUser };
    }
    if (route === 'GET /applications/@me') {
      this.requireBotAuth(req);
      return { status: 200, body: { id: this.applicationId, name: 'pictalk', icon: null, description: '', bot_public: true, bot_require_code_grant: false, verify_key: '0'.repeat(64), flags: 0, bot: this.botUser } };
    }
    if (route === 'PUT /applications/:app/commands' || route === 'PUT /applications/:app/guilds/:guild/commands') {
      this.requireBotAuth(req);
      if (parts[1] !== this.applicationId) throw unknown('Application', 10002);
      const guildId = parts[2] === 'guilds' ? parts[3] : undefined;
      if (guildId !== undefined && guildId !== this.guildId) throw new HttpError(403, { message: 'Missing Access', code: 50001 });
      const body = call.body as unknown as Array<Record<string, unknown>>;
      if (!Array.isArray(body)) throw invalidForm('_', 'Expected an array of commands');
      this.commandPuts.push({ guildId, body });
      return {
        status: 200,
        body: body.map((command) => ({
          ...command, id: this.command(String(command.name)).id, application_id: this.applicationId, version: snowflake(),
          type: command.type ?? 1, description: command.description ?? '', default_member_permissions: command.default_member_permissions ?? null,
          nsfw: false, ...(guildId ? { guild_id: guildId } : {}),
        })),
      };
    }
    if (route === 'POST /interactions/:id/:token/callback') return this.callback(parts[1]!, parts[2]!, url, call);
    if (parts[0] === 'webhooks') {
      const interaction = this.interactionByToken(parts[1]!, parts[2]!, call);
      if (route === 'POST /webhooks/:app/:token') return { status: 200, body: this.followUp(interaction, call) };
      const messageId = parts[4]!;
      if (route.endsWith('/messages/@original') || route.endsWith('/messages/:id')) {
        const id = messageId === '@original' ? interaction.originalId : messageId;
        const message = id ? this.messages.get(id) : undefined;
        if (!interaction.response) throw unknown('Webhook', 10015);
        if (!message) throw unknown('Message', 10008);
        if (method === 'GET') return { status: 200, body: message };
        if (method === 'PATCH') return { status: 200, body: this.edit(interaction, message, call) };
        if (method === 'DELETE') {
          this.messages.delete(message.id);
          this.deletedMessages.push(message.id);
          return { status: 204 };
        }
      }
    }
    if (route === 'POST /channels/:channel/messages') {
      this.requireBotAuth(req);
      if (parts[1] !== this.channelId) throw unknown('Channel', 10003);
      return { status: 200, body: this.channelMessage(call) };
    }
    if (route === 'DELETE /channels/:channel/messages/:id') {
      this.requireBotAuth(req);
      const message = parts[1] === this.channelId ? this.messages.get(parts[3]!) : undefined;
      if (!message) throw unknown('Message', 10008);
      if ((message.flags ?? 0) & MessageFlag.Ephemeral) throw unknown('Message', 10008);
      this.messages.delete(message.id);
      this.deletedMessages.push(message.id);
      return { status: 204 };
    }
    throw new HttpError(404, { message: '404: Not Found', code: 0 });
  }

  private callback(id: string, token: string, url: URL, call: RestCall): { status: number; body?: unknown } {
    const interaction = this.interactions.get(id);
    if (!interaction || interaction.token !== token) throw unknown('interaction', 10062);
    call.interactionId = id;
    // Discord forgets an interaction that got no initial response within 3 seconds of its dispatch.
    if (Date.now() - interaction.dispatchedAt > this.responseDeadlineMs) throw unknown('interaction', 10062);
    if (interaction.response) throw new HttpError(400, { message: 'Interaction has already been acknowledged.', code: 40060 });
    const body = call.body as { type?: number; data?: Record<string, unknown> } | undefined;
    const type = body?.type;
    const data = body?.data ?? {};
    const flags = Number(data.flags ?? 0);
    const ephemeral = Boolean(flags & MessageFlag.Ephemeral);
    let message: APIMessage | undefined;
    if (type === 4 || type === 5) {
      // 5: the "is thinking…" placeholder carries the LOADING flag until the first edit.
      message = this.messageObject({
        id: snowflake(), author: this.botUser, content: type === 4 ? String(data.content ?? '') : '', attachments: this.attachmentsFor(call, [], data),
        type: (interaction.payload.type as number) === 2 ? 20 : 0, flags: (ephemeral ? MessageFlag.Ephemeral : 0) | (type === 5 ? MessageFlag.Loading : 0),
        components: data.components as unknown[] | undefined, interaction,
      });
      this.messages.set(message.id, message);
      interaction.originalId = message.id;
    } else if (type === 6 || type === 7) {
      interaction.originalId = (interaction.payload.message as APIMessage | undefined)?.id;
    } else {
      throw invalidForm('type', `Expected an interaction callback type 4, 5, 6 or 7, got ${String(type)}`);
    }
    interaction.response = { type, at: Date.now(), ephemeral };
    if (url.searchParams.get('with_response') !== 'true') return { status: 204 };
    return {
      status: 200,
      body: {
        interaction: { id, type: interaction.payload.type, response_message_id: message?.id, response_message_loading: type === 5, response_message_ephemeral: ephemeral },
        resource: { type, ...(message ? { message } : {}) },
      },
    };
  }

  private followUp(interaction: FakeInteraction, call: RestCall): APIMessage {
    if (!interaction.response) throw unknown('Webhook', 10015);
    const body = call.body ?? {};
    const flags = Number(body.flags ?? 0);
    const attachments = this.attachmentsFor(call, [], body);
    validateMessage(String(body.content ?? ''), flags, attachments);
    const message = this.messageObject({
      id: snowflake(), author: this.botUser, content: String(body.content ?? ''), attachments, type: 0,
      flags: flags & (MessageFlag.Ephemeral | MessageFlag.IsVoiceMessage), components: body.components as unknown[] | undefined, interaction,
    });
    this.messages.set(message.id, message);
    return message;
  }

  /** A message the bot posts in the channel with its own token (no interaction behind it). */
  private channelMessage(call: RestCall): APIMessage {
    const body = call.body ?? {};
    const flags = Number(body.flags ?? 0);
    if (flags & MessageFlag.Ephemeral) throw invalidForm('flags', 'Only interaction responses can be ephemeral.');
    const attachments = this.attachmentsFor(call, [], body);
    validateMessage(String(body.content ?? ''), flags, attachments);
    const message = this.messageObject({
      id: snowflake(), author: this.botUser, content: String(body.content ?? ''), attachments, type: 0,
      flags: flags & MessageFlag.IsVoiceMessage, components: body.components as unknown[] | undefined,
    });
    this.messages.set(message.id, message);
    return message;
  }

  private edit(_interaction: FakeInteraction, message: APIMessage, call: RestCall): APIMessage {
    const body = call.body ?? {};
    const content = 'content' in body ? String(body.content ?? '') : message.content;
    const attachments = this.attachmentsFor(call, message.attachments, body);
    validateMessage(content, message.flags ?? 0, attachments);
    const edited: APIMessage = {
      ...message, content, attachments, edited_timestamp: new Date().toISOString(),
      // The first edit of a deferred response ends its loading state.
      flags: (message.flags ?? 0) & ~MessageFlag.Loading,
      components: ('components' in body ? body.components ?? [] : message.components) as APIMessage['components'],
    };
    this.messages.set(message.id, edited);
    return edited;
  }

  /**
   * Attachments after a create or edit: `attachments[]` in the payload lists the ones to keep (existing ids) and
   * describes the new ones (`id` = the `files[n]` index) with `description`, `duration_secs`, `waveform`; without the
   * field, existing ones stay and every uploaded file is added.
   * @see https://discord.com/developers/docs/reference#uploading-files
   */
  private attachmentsFor(call: RestCall, existing: APIAttachment[], body: Record<string, unknown>): APIAttachment[] {
    const described = Array.isArray(body.attachments) ? body.attachments as Array<Record<string, unknown>> : undefined;
    const uploads = new Map(call.files.map((file) => [/^files\[(\d+)\]$/.exec(file.field)?.[1] ?? file.field, file]));
    for (const file of call.files) {
      if (file.data.length > this.attachmentSizeLimit) throw new HttpError(413, { message: 'Request entity too large', code: 40005 });
    }
    const store = (file: UploadedFile, meta: Record<string, unknown>): APIAttachment => {
      const stored: StoredFile = { id: snowflake(), name: String(meta.filename ?? file.name), contentType: file.contentType, data: file.data };
      this.files.set(stored.id, stored);
      const extra: Partial<APIAttachment> = {};
      if (typeof meta.description === 'string') extra.description = meta.description;
      if (typeof meta.duration_secs === 'number') extra.duration_secs = meta.duration_secs;
      if (typeof meta.waveform === 'string') extra.waveform = meta.waveform;
      return attachmentObject(stored, this.baseUrl, this.channelId, extra);
    };
    if (!described) return [...existing, ...[...uploads.values()].map((file) => store(file, {}))];
    return described.map((meta, index) => {
      const id = String(meta.id ?? '');
      const upload = uploads.get(id);
      if (upload) return store(upload, meta);
      const kept = existing.find((attachment) => attachment.id === id);
      if (!kept) throw invalidForm(`attachments.${index}.id`, `Unknown attachment id ${id}`);
      return kept;
    });
  }
}

/** The message rules pictalk relies on, with Discord's own limits. */
function validateMessage(content: string, flags: number, attachments: APIAttachment[]): void {
  if (content.length > 2000) throw invalidForm('content', 'Must be 2000 or fewer in length.');
  for (const [index, attachment] of attachments.entries()) {
    if ((attachment.description?.length ?? 0) > 1024) throw invalidForm(`attachments.${index}.description`, 'Must be 1024 or fewer in length.');
  }
  if (flags & MessageFlag.IsVoiceMessage) {
    // A voice message is exactly one audio attachment with its duration and waveform, and no text.
    const [audio] = attachments;
    if (content) throw invalidForm('content', 'Voice messages cannot have content.');
    if (attachments.length !== 1 || !audio) throw invalidForm('attachments', 'Voice messages must have exactly one attachment.');
    if (!audio.content_type?.startsWith('audio/')) throw invalidForm('attachments.0', `Voice messages must be audio, got ${audio.content_type}`);
    if (typeof audio.duration_secs !== 'number' || typeof audio.waveform !== 'string') {
      throw invalidForm('attachments.0', 'Voice messages need duration_secs and waveform.');
    }
  }
}

function routeOf(path: string): string {
  return path
    .replace(/^\/interactions\/\d+\/[^/]+\/callback$/, '/interactions/:id/:token/callback')
    .replace(/^\/webhooks\/\d+\/[^/]+/, '/webhooks/:app/:token')
    .replace(/\/messages\/\d+$/, '/messages/:id')
    .replace(/^\/applications\/\d+/, '/applications/:app')
    .replace(/\/guilds\/\d+/, '/guilds/:guild')
    .replace(/^\/channels\/\d+/, '/channels/:channel');
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** JSON, or multipart/form-data with `payload_json` and `files[n]` (parsed by the platform's own `Response.formData`). */
async function parseBody(contentType: string | undefined, raw: Buffer): Promise<{ body?: Record<string, unknown>; files: UploadedFile[] }> {
  if (raw.length === 0) return { files: [] };
  if (contentType?.startsWith('application/json')) return { body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, files: [] };
  if (contentType?.startsWith('multipart/form-data')) {
    const form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
    const files: UploadedFile[] = [];
    let body: Record<string, unknown> | undefined;
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') {
        if (field === 'payload_json') body = JSON.parse(value) as Record<string, unknown>;
        continue;
      }
      files.push({ field, name: value.name, contentType: value.type, data: Buffer.from(await value.arrayBuffer()) });
    }
    return { body, files };
  }
  throw invalidForm('_', `Expected JSON or multipart/form-data, got ${contentType ?? 'no content type'}`);
}
