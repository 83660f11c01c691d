/**
 * A fake Discord that the real discord.js client runs against: the REST API (`/api/v10`) for what pictalk uses, a
 * gateway websocket, and a small CDN for attachments, on one local port. It records every REST call with its parsed
 * body and uploaded files, enforces the interaction rules the real API enforces (respond within 3 s, respond once,
 * edit only after responding, voice-message shape, upload size) and can answer 429 on demand.
 *
 * Start it with `await FakeDiscord.start()`, point the client at `fake.apiUrl` (discord.js `rest.api`), log in with
 * `fake.token`, then drive it with `sendChatInput`, `sendButton`, `sendMessageCommand`, `gateway.disconnect()`.
 *
 * Interactions go over the gateway by default. `useHttpEndpoints([...])` switches to Discord's "interactions endpoint
 * URL" mode: each interaction is POSTed, signed with the fake's Ed25519 key (`publicKeyHex`), to one endpoint in turn,
 * and the endpoint's HTTP answer is the initial response. `addGuild()` adds servers, `{ dm: true }` sends from a DM,
 * and `start({ shards })` runs a sharded gateway.
 * @see https://discord.com/developers/docs/interactions/receiving-and-responding
 * @see https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
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
import { FakeGateway, type ShardPair } from './fake-discord.gateway.js';
import {
  MEMBER_PERMISSIONS,
  MessageFlag,
  Permission,
  attachmentObject,
  buttonInteraction,
  chatInputInteraction,
  dmChannel,
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
  /** The initial response: when and of which type (5 = deferred channel message), by callback or as an HTTP answer. */
  response?: { type: number; at: number; ephemeral: boolean; via?: 'callback' | 'http' };
  originalId?: string;
  /** HTTP delivery: the POST whose answer became the initial response, or else the first one answered. */
  delivery?: HttpDelivery;
  /** HTTP delivery: every POST of this interaction (double deliveries, `redeliver`), in the order their answers came. */
  deliveries?: HttpDelivery[];
  /** HTTP delivery: valid initial responses that came after the one that counted; Discord drops them. */
  duplicateResponses?: HttpDelivery[];
  /** HTTP delivery: the first valid initial response that came after `responseDeadlineMs`; it did not count. */
  lateResponse?: HttpDelivery;
}

/**
 * One signed POST of an interaction to an endpoint and what came of its answer:
 * `accepted` (it became the initial response), `duplicate` (valid, but the interaction was already acknowledged),
 * `late` (valid, but after `responseDeadlineMs`), `invalid` (not 200, not JSON, not a valid initial response),
 * `failed` (no HTTP answer: refused, reset, or none within `httpTimeoutMs`).
 */
export interface HttpDelivery {
  url: string;
  sentAt: number;
  /** The endpoint's HTTP status; 0 when the POST failed. */
  status: number;
  /** ms from sending the POST until the answer's headers and body had arrived. */
  ackMs: number;
  /** The answer's body as text. */
  body: string;
  outcome: 'accepted' | 'duplicate' | 'late' | 'invalid' | 'failed';
  /** Why an answer did not count (or the network error). */
  reason?: string;
}

/** How `postSigned` signs: correctly, a flipped byte, no headers, a timestamp 600 s old, or another key pair. */
export type SignatureCase = 'good' | 'bad' | 'missing' | 'stale' | 'other-key';

export interface SignedPostOptions {
  /** Unix seconds for `X-Signature-Timestamp` (default: now, or 600 s ago for 'stale'). */
  timestamp?: number;
  /** Extra or replacing headers. */
  headers?: Record<string, string>;
  /** Abort the POST after this long (default: `httpTimeoutMs`). */
  timeoutMs?: number;
}

export interface SignedPostResult { status: number; body: string; ms: number }

/** A PING the fake sent, as Discord does when the endpoint URL is saved, with its answer. */
export interface PingRecord extends SignedPostResult { at: number; url: string; how: SignatureCase }

/** Where an interaction comes from and how it travels; the last argument of the `send*` methods. */
export interface DispatchOptions {
  /** A guild from `addGuild()`; default: the first guild (`fake.guildId`). */
  guildId?: string;
  /** From the member's DM with the bot instead of a guild channel. */
  dm?: boolean;
  /** HTTP delivery only: POST the interaction to every endpoint at once (Discord delivering it twice). */
  deliverTo?: 'all';
  /** The guild channel is age-restricted (`channel.nsfw` in the payload). */
  nsfw?: boolean;
}

/** A server the bot is in: one text channel and the two roles of the first guild's setup, with ids of its own. */
export interface FakeGuild {
  guildId: string;
  channelId: string;
  moderatorRoleId: string;
  artistRoleId: string;
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
  /** Shards the bot must run (`GET /gateway/bot`'s `shards`); default 1. */
  shards?: number;
  /**
   * `session_start_limit.max_concurrency` of `GET /gateway/bot`: discord.js identifies that many shards per 5 s.
   * Real Discord: 1 for most bots (so a second shard waits 5 s); default 1.
   */
  maxConcurrency?: number;
  /** HTTP delivery: how long the fake waits for an endpoint's answer before it gives up (default 10 s). */
  httpTimeoutMs?: number;
}

/** Discord's user agent on interaction POSTs. */
const INTERACTIONS_USER_AGENT = 'Discord-Interactions/1.0 (+https://discord.com)';
/** How old a 'stale' signature's timestamp is. */
const STALE_SECONDS = 600;
const INITIAL_RESPONSE_TYPES: readonly unknown[] = [4, 5, 6, 7];

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
  /** The first guild; more come from `addGuild()`. */
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
  /** The application's Ed25519 public key, 64 hex digits, as the developer portal shows it (`verify_key`). */
  readonly publicKeyHex: string;
  /** Every PING sent with `ping()`, with its answer. */
  readonly pings: PingRecord[] = [];
  private readonly files = new Map<string, StoredFile>();
  private readonly commandIds = new Map<string, string>();
  private readonly rateLimits: RateLimitRule[] = [];
  private readonly refusals: Array<{ route: string; when: (call: RestCall) => boolean; status: number; body: Record<string, unknown> }> = [];
  private readonly holds: Array<{ route: string; when: (call: RestCall) => boolean; arrived: (call: RestCall) => void }> = [];
  private readonly guilds = new Map<string, FakeGuild>();
  /** Every channel the bot can post in: each guild's text channel and the DM channels, by id. */
  private readonly channels = new Map<string, { guildId?: string; recipient?: APIUser }>();
  /** DM channel id by user id: one DM channel per user, as on Discord. */
  private readonly dmChannels = new Map<string, string>();
  private readonly privateKey: KeyObject;
  private otherPrivateKey?: KeyObject;
  private endpoints: string[] = [];
  private nextEndpoint = 0;
  private readonly httpDeliveries = new Map<string, Array<Promise<HttpDelivery>>>();
  private readonly inflight = new Set<AbortController>();
  private readonly maxConcurrency: number;
  /** Settable between interactions. */
  responseDeadlineMs: number;
  /** `attachment_size_limit` of the interactions dispatched from now on; uploads over it are refused with 413. */
  attachmentSizeLimit: number;
  /** Settable: how long an interaction token works for webhook calls (follow-ups and edits). */
  tokenLifetimeMs: number;
  /** Settable: how long an HTTP delivery waits for the endpoint's answer before it counts as failed. */
  httpTimeoutMs: number;
  private server!: Server;
  baseUrl = '';

  private constructor(options: FakeDiscordOptions) {
    this.token = options.token ?? 'fake-bot-token';
    this.applicationId = options.applicationId ?? snowflake();
    this.responseDeadlineMs = options.responseDeadlineMs ?? 3000;
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? 15 * 60_000;
    this.attachmentSizeLimit = options.attachmentSizeLimit ?? 10 * 1024 * 1024;
    this.httpTimeoutMs = options.httpTimeoutMs ?? 10_000;
    this.maxConcurrency = options.maxConcurrency ?? 1;
    const keys = generateKeyPairSync('ed25519');
    this.privateKey = keys.privateKey;
    // The SPKI DER of an Ed25519 key is a fixed 12-byte header and the raw 32-byte key.
    this.publicKeyHex = keys.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
    this.botUser = user(this.applicationId, 'pictalk', true);
    const memberOf = (name: string, roleIds: string[], permissions: bigint): FakeMember => ({ user: user(snowflake(), name), roleIds, permissions });
    this.members = {
      alice: memberOf('alice', [this.artistRoleId], MEMBER_PERMISSIONS),
      bob: memberOf('bob', [], MEMBER_PERMISSIONS),
      mod: memberOf('morgan', [], MEMBER_PERMISSIONS | Permission.ManageGuild),
      roleMod: memberOf('robin', [this.moderatorRoleId, this.artistRoleId], MEMBER_PERMISSIONS),
    };
    this.registerGuild({ guildId: this.guildId, channelId: this.channelId, moderatorRoleId: this.moderatorRoleId, artistRoleId: this.artistRoleId });
    this.gateway = new FakeGateway({
      token: this.token,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      shardCount: options.shards ?? 1,
      ready: (sessionId, shard) => this.readyPayload(sessionId, shard),
      afterReady: (shardId) => this.guildsOnShard(shardId).map((guild) => ({ t: 'GUILD_CREATE', d: this.guildPayload(guild) })),
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
    for (const controller of this.inflight) controller.abort(new Error('fake discord: stopped'));
    await this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- test controls --------------------------------------------------------------------------------------------

  /** Answer the next request on `route` with 429 and `retry_after` seconds, body and headers as Discord sends them. */
  rateLimitNext(route: string, retryAfter: number, global = false): void {
    this.rateLimits.push({ route, retryAfter, global });
  }

  /**
   * Refuse the next request on `route` that `when` accepts with this status and error body (a Discord error such as
   * `{ code: 50006, message: 'Cannot send an empty message' }`), as Discord would for a payload it will not take.
   */
  refuseNext(route: string, status: number, body: Record<string, unknown>, when: (call: RestCall) => boolean = () => true): void {
    this.refusals.push({ route, when, status, body });
  }

  /**
   * Hold the next request on `route` that `when` accepts: neither applied nor answered, like an upload that never
   * completes, until its connection closes (its sender died); it stays in `calls` with status 0. Resolves with the
   * call once it arrives.
   */
  holdNext(route: string, when: (call: RestCall) => boolean = () => true): Promise<RestCall> {
    return new Promise((arrived) => { this.holds.push({ route, when, arrived }); });
  }

  /** Host a file on the fake CDN, as a user's upload; `reportedSize` lets the attachment object lie about its size. */
  hostFile(name: string, data: Buffer, contentType: string, reportedSize?: number): APIAttachment {
    const file: StoredFile = { id: snowflake(), name, contentType, data };
    this.files.set(file.id, file);
    const attachment = attachmentObject(file, this.baseUrl, this.channelId, { ephemeral: true });
    return reportedSize === undefined ? attachment : { ...attachment, size: reportedSize };
  }

  /** A message by a member, with attachments, for the "Caption image" context-menu command; in the first guild's channel by default. */
  userMessage(author: FakeMember, content: string, attachments: APIAttachment[], channelId = this.channelId): APIMessage {
    this.requireChannel(channelId);
    const message = this.messageObject({ id: snowflake(), channelId, author: author.user, content, attachments, type: 0, flags: 0 });
    this.messages.set(message.id, message);
    return message;
  }

  /**
   * Add a server the bot is in, set up as the first one (a text channel, the moderator and artist roles with ids of
   * its own; members keep their roles there). `shard` picks a guild id that lands on that shard. If the shard is
   * connected, it gets the guild's GUILD_CREATE, as when a bot joins a server.
   */
  addGuild(options: { shard?: number } = {}): FakeGuild {
    const { shard } = options;
    const shardCount = this.gateway.shardCount;
    if (shard !== undefined && !(Number.isInteger(shard) && shard >= 0 && shard < shardCount)) {
      throw new Error(`fake discord: shard ${shard} does not exist; the gateway has ${shardCount} shard(s)`);
    }
    let guildId = snowflake();
    // A snowflake's shard depends only on its timestamp: step back a millisecond at a time until it lands on the shard.
    for (let back = 1; shard !== undefined && this.shardOf(guildId) !== shard; back++) guildId = snowflake(Date.now() - back);
    const guild: FakeGuild = { guildId, channelId: snowflake(), moderatorRoleId: snowflake(), artistRoleId: snowflake() };
    this.registerGuild(guild);
    const onShard = this.shardOf(guildId);
    if (this.gateway.hasSession(onShard)) this.gateway.dispatchTo(onShard, 'GUILD_CREATE', this.guildPayload(guild));
    return guild;
  }

  /** Every guild, the first one first. */
  allGuilds(): FakeGuild[] {
    return [...this.guilds.values()];
  }

  /** The gateway shard a guild's events go to: `(guild_id >> 22) % shards`. */
  shardOf(guildId: string): number {
    return this.gateway.shardOf(guildId);
  }

  /** The id of a member's DM channel with the bot (made on first use, like `POST /users/@me/channels`). */
  dmChannelId(by: FakeMember): string {
    return this.dmChannelFor(by.user);
  }

  sendChatInput(
    name: string,
    options: APIApplicationCommandInteractionDataOption[] = [],
    by: FakeMember = this.members.alice,
    resolved?: APIInteractionDataResolved,
    where: DispatchOptions = {},
  ): FakeInteraction {
    const input = this.interactionInput(by, where);
    return this.dispatchInteraction((id, token) => chatInputInteraction(input, id, token, this.command(name), options, resolved), where);
  }

  sendMessageCommand(name: string, target: APIMessage, by: FakeMember = this.members.alice, where: DispatchOptions = {}): FakeInteraction {
    const input = this.interactionInput(by, where);
    return this.dispatchInteraction((id, token) => messageCommandInteraction(input, id, token, this.command(name), target), where);
  }

  sendButton(customId: string, message: APIMessage, by: FakeMember = this.members.alice, where: DispatchOptions = {}): FakeInteraction {
    const input = this.interactionInput(by, where);
    return this.dispatchInteraction((id, token) => buttonInteraction(input, id, token, customId, message), where);
  }

  /** Calls on one interaction's webhook (callback, edits, follow-ups), in order. HTTP answers are not calls: see `delivery`. */
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

  // ---- HTTP interaction delivery (interactions endpoint URL) ----------------------------------------------------

  /**
   * From now on, deliver every interaction as a signed POST to one of `urls` in turn (round-robin, as a load balancer
   * in front of several fronts would); an empty list goes back to the gateway.
   * @see https://discord.com/developers/docs/interactions/receiving-and-responding#receiving-an-interaction
   */
  useHttpEndpoints(urls: string[]): void {
    this.endpoints = [...urls];
    this.nextEndpoint = 0;
  }

  /** Deliver interactions over the gateway again (the default). */
  useGateway(): void {
    this.useHttpEndpoints([]);
  }

  /** The endpoints interactions are POSTed to; empty while they go over the gateway. */
  get httpEndpoints(): readonly string[] {
    return this.endpoints;
  }

  /** Resolves when every HTTP delivery of the interaction so far got its answer or failed (at once for the gateway). */
  async delivered(interaction: FakeInteraction): Promise<void> {
    for (let settled = -1; ;) {
      const pending = this.httpDeliveries.get(interaction.id) ?? [];
      if (pending.length === settled) return;
      settled = pending.length;
      await Promise.all(pending);
    }
  }

  /** POST the same interaction (same id and token) again, signed, to `url`: Discord delivering one interaction to two fronts. */
  redeliver(interaction: FakeInteraction, url: string): Promise<HttpDelivery> {
    return this.deliverOverHttp(interaction, url);
  }

  /**
   * A raw POST for signature checks: `body` (JSON-encoded unless a string or Buffer) signed as `how` says.
   * An endpoint must answer 401 to anything but 'good'.
   * @see https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers
   */
  async postSigned(url: string, body: unknown, how: SignatureCase = 'good', options: SignedPostOptions = {}): Promise<SignedPostResult> {
    const raw = typeof body === 'string' ? Buffer.from(body) : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const answer = await this.post(url, raw, how, options);
    return { status: answer.status, body: answer.raw.toString('utf8'), ms: answer.ms };
  }

  /**
   * A PING, as Discord sends when the endpoint URL is saved (it also sends one badly signed and expects 401).
   * The endpoint must answer `{"type":1}`. Recorded in `pings`.
   */
  async ping(url: string, how: SignatureCase = 'good'): Promise<SignedPostResult> {
    const payload = { type: 1, id: snowflake(), application_id: this.applicationId, token: newToken(snowflake()), version: 1 };
    const result = await this.postSigned(url, payload, how);
    this.pings.push({ at: Date.now(), url, how, ...result });
    return result;
  }

  private deliverOverHttp(interaction: FakeInteraction, url: string): Promise<HttpDelivery> {
    const delivery = this.postInteraction(interaction, url);
    const pending = this.httpDeliveries.get(interaction.id) ?? [];
    pending.push(delivery);
    this.httpDeliveries.set(interaction.id, pending);
    return delivery;
  }

  /** POST the interaction, take the answer as its initial response if it is one, and record the delivery. Never rejects. */
  private async postInteraction(interaction: FakeInteraction, url: string): Promise<HttpDelivery> {
    const sentAt = Date.now();
    let delivery: HttpDelivery;
    try {
      const answer = await this.post(url, Buffer.from(JSON.stringify(interaction.payload)), 'good');
      delivery = { url, sentAt, status: answer.status, ackMs: answer.ms, body: answer.raw.toString('utf8'), ...await this.takeAnswer(interaction, answer) };
    } catch (error) {
      delivery = { url, sentAt, status: 0, ackMs: Date.now() - sentAt, body: '', outcome: 'failed', reason: errorText(error) };
    }
    (interaction.deliveries ??= []).push(delivery);
    if (delivery.outcome === 'accepted' || !interaction.delivery) interaction.delivery = delivery;
    if (delivery.outcome === 'duplicate') (interaction.duplicateResponses ??= []).push(delivery);
    if (delivery.outcome === 'late') interaction.lateResponse ??= delivery;
    return delivery;
  }

  /** An endpoint's answer, judged as Discord does: only a 200 with a valid initial response, in time and first, counts. */
  private async takeAnswer(interaction: FakeInteraction, answer: HttpAnswer): Promise<Pick<HttpDelivery, 'outcome' | 'reason'>> {
    if (answer.status !== 200) return { outcome: 'invalid', reason: `HTTP ${answer.status}` };
    let parsed: Awaited<ReturnType<typeof parseBody>>;
    try {
      parsed = await parseBody(answer.contentType, answer.raw);
    } catch (error) {
      return { outcome: 'invalid', reason: `unreadable answer: ${errorText(error)}` };
    }
    const type = parsed.body?.type;
    if (!INITIAL_RESPONSE_TYPES.includes(type)) return { outcome: 'invalid', reason: `not an initial response (type ${JSON.stringify(type)})` };
    if (interaction.response) return { outcome: 'duplicate', reason: 'Interaction has already been acknowledged.' };
    const after = answer.receivedAt - interaction.dispatchedAt;
    if (after > this.responseDeadlineMs) return { outcome: 'late', reason: `answered ${after} ms after dispatch; the deadline is ${this.responseDeadlineMs} ms` };
    try {
      this.respond(interaction, parsed.body, parsed.files, 'http');
    } catch (error) {
      if (error instanceof HttpError) return { outcome: 'invalid', reason: `${error.message} ${JSON.stringify(error.body)}` };
      throw error;
    }
    return { outcome: 'accepted' };
  }

  /** One signed POST; aborted after `timeoutMs` (default `httpTimeoutMs`) or when the fake stops. */
  private async post(url: string, body: Buffer, how: SignatureCase, options: SignedPostOptions = {}): Promise<HttpAnswer> {
    const controller = new AbortController();
    const timeoutMs = options.timeoutMs ?? this.httpTimeoutMs;
    const timer = setTimeout(() => controller.abort(new Error(`fake discord: no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    this.inflight.add(controller);
    const started = Date.now();
    try {
      const headers = { ...this.signedHeaders(body, how, options.timestamp), ...options.headers };
      const response = await fetch(url, { method: 'POST', headers, body: new Uint8Array(body), signal: controller.signal });
      const raw = Buffer.from(await response.arrayBuffer());
      const receivedAt = Date.now();
      return { status: response.status, contentType: response.headers.get('content-type') ?? undefined, raw, ms: receivedAt - started, receivedAt };
    } finally {
      clearTimeout(timer);
      this.inflight.delete(controller);
    }
  }

  /**
   * Discord's signature headers: `X-Signature-Ed25519` is the hex Ed25519 signature of the timestamp's bytes followed
   * by the raw body, `X-Signature-Timestamp` the unix seconds.
   */
  private signedHeaders(body: Buffer, how: SignatureCase, timestamp?: number): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': INTERACTIONS_USER_AGENT };
    if (how === 'missing') return headers;
    const seconds = String(timestamp ?? Math.floor(Date.now() / 1000) - (how === 'stale' ? STALE_SECONDS : 0));
    const key = how === 'other-key' ? (this.otherPrivateKey ??= generateKeyPairSync('ed25519').privateKey) : this.privateKey;
    const signature = sign(null, Buffer.concat([Buffer.from(seconds), body]), key);
    if (how === 'bad') signature.writeUInt8(signature.readUInt8(0) ^ 0xff, 0);
    return { ...headers, 'X-Signature-Ed25519': signature.toString('hex'), 'X-Signature-Timestamp': seconds };
  }

  // ---- payloads --------------------------------------------------------------------------------------------------

  private registerGuild(guild: FakeGuild): void {
    this.guilds.set(guild.guildId, guild);
    this.channels.set(guild.channelId, { guildId: guild.guildId });
  }

  private guild(guildId: string): FakeGuild {
    const guild = this.guilds.get(guildId);
    if (!guild) throw new Error(`fake discord: unknown guild ${guildId}; add it with addGuild()`);
    return guild;
  }

  private guildsOnShard(shardId: number): FakeGuild[] {
    return this.allGuilds().filter((guild) => this.shardOf(guild.guildId) === shardId);
  }

  private requireChannel(channelId: string): void {
    if (!this.channels.has(channelId)) throw new Error(`fake discord: unknown channel ${channelId}`);
  }

  private dmChannelFor(recipient: APIUser): string {
    let channelId = this.dmChannels.get(recipient.id);
    if (!channelId) {
      channelId = snowflake();
      this.dmChannels.set(recipient.id, channelId);
      this.channels.set(channelId, { recipient });
    }
    return channelId;
  }

  /** READY for one shard: only the guilds on that shard, still unavailable until their GUILD_CREATE. */
  private readyPayload(sessionId: string, shard: ShardPair): Record<string, unknown> {
    return {
      v: 10, user_settings: {}, user: this.botUser, session_type: 'normal', session_id: sessionId,
      resume_gateway_url: this.gatewayUrl, relationships: [], private_channels: [], presences: [],
      guilds: this.guildsOnShard(shard[0]).map((guild) => ({ id: guild.guildId, unavailable: true })), guild_join_requests: [],
      geo_ordered_rtc_regions: [], application: { id: this.applicationId, flags: 0 }, shard, _trace: ['["fake-gateway",{"micros":0}]'],
    };
  }

  private guildPayload(guild: FakeGuild) {
    const everyone = role(guild.guildId, '@everyone', MEMBER_PERMISSIONS, 0);
    const roles = [everyone, role(guild.moderatorRoleId, 'pictalk moderators', MEMBER_PERMISSIONS, 2), role(guild.artistRoleId, 'artists', MEMBER_PERMISSIONS, 1)];
    const members: APIGuildMember[] = [member(this.botUser, [])];
    const name = guild.guildId === this.guildId ? undefined : `pictalk test server ${this.allGuilds().indexOf(guild) + 1}`;
    return guildCreate({ guildId: guild.guildId, name, channelId: guild.channelId, ownerId: this.members.mod.user.id, roles, members });
  }

  /** A member's roles in a guild: the first guild's moderator and artist roles become that guild's own. */
  private rolesIn(guild: FakeGuild, roleIds: string[]): string[] {
    return roleIds.map((id) => (id === this.moderatorRoleId ? guild.moderatorRoleId : id === this.artistRoleId ? guild.artistRoleId : id));
  }

  private interactionInput(by: FakeMember, where: DispatchOptions): InteractionInput {
    const common = { applicationId: this.applicationId, attachmentSizeLimit: this.attachmentSizeLimit };
    if (where.dm) {
      if (where.guildId !== undefined) throw new Error('fake discord: an interaction comes from a guild or from a DM, not both');
      return { ...common, channelId: this.dmChannelFor(by.user), user: by.user };
    }
    const guild = this.guild(where.guildId ?? this.guildId);
    return {
      ...common, guildId: guild.guildId, channelId: guild.channelId, ...(where.nsfw ? { nsfw: true } : {}),
      member: interactionMember(member(by.user, this.rolesIn(guild, by.roleIds)), by.permissions),
    };
  }

  private command(name: string): { id: string; name: string } {
    let id = this.commandIds.get(name);
    if (!id) this.commandIds.set(name, (id = snowflake()));
    return { id, name };
  }

  /**
   * Over the gateway: INTERACTION_CREATE on the guild's shard (a DM: shard 0); throws if that shard has no session.
   * Over HTTP: a signed POST to the next endpoint (or to all with `deliverTo: 'all'`), in the background.
   */
  private dispatchInteraction(build: (id: string, token: string) => Record<string, unknown>, where: DispatchOptions): FakeInteraction {
    const id = snowflake();
    const token = newToken(id);
    const interaction: FakeInteraction = { id, token, dispatchedAt: Date.now(), payload: build(id, token) };
    if (this.endpoints.length === 0) {
      if (where.deliverTo === 'all') throw new Error("fake discord: deliverTo 'all' needs HTTP endpoints (useHttpEndpoints)");
      this.gateway.dispatch('INTERACTION_CREATE', interaction.payload);
      this.interactions.set(id, interaction);
      return interaction;
    }
    this.interactions.set(id, interaction);
    const urls = where.deliverTo === 'all' ? this.endpoints : [this.endpoints[this.nextEndpoint++ % this.endpoints.length]!];
    for (const url of urls) void this.deliverOverHttp(interaction, url);
    return interaction;
  }

  private messageObject(fields: { id: string; channelId: string; author: APIUser; content: string; attachments: APIAttachment[]; type: number; flags: number; components?: unknown[]; embeds?: unknown; interaction?: FakeInteraction }): APIMessage {
    const { interaction } = fields;
    const payload = interaction?.payload as { member?: { user: APIUser }; user?: APIUser; authorizing_integration_owners?: Record<string, string> } | undefined;
    const by = payload?.member?.user ?? payload?.user;
    return {
      id: fields.id, channel_id: fields.channelId, author: fields.author, content: fields.content, timestamp: new Date().toISOString(),
      edited_timestamp: null, tts: false, mention_everyone: false, mentions: [], mention_roles: [], attachments: fields.attachments,
      embeds: embedsOf(fields.embeds, fields.attachments), pinned: false, type: fields.type, flags: fields.flags, components: (fields.components ?? []) as APIMessage['components'],
      ...(interaction ? {
        webhook_id: this.applicationId, application_id: this.applicationId,
        interaction_metadata: { id: interaction.id, type: interaction.payload.type as 2, user: by!, authorizing_integration_owners: payload?.authorizing_integration_owners ?? {} },
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
      const refused = this.refusals.findIndex((rule) => rule.route === call.route && rule.when(call));
      if (refused >= 0) {
        const [rule] = this.refusals.splice(refused, 1);
        throw new HttpError(rule!.status, rule!.body);
      }
      const held = this.holds.findIndex((rule) => rule.route === call.route && rule.when(call));
      if (held >= 0) {
        const [rule] = this.holds.splice(held, 1);
        await new Promise<void>((closed) => { req.socket.once('close', () => closed()); rule!.arrived(call); });
        return;
      }
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
      return {
        status: 200,
        body: { url: this.gatewayUrl, shards: this.gateway.shardCount, session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: this.maxConcurrency } },
      };
    }
    if (route === 'GET /gateway') return { status: 200, body: { url: this.gatewayUrl } };
    if (route === 'GET /users/@me') {
      this.requireBotAuth(req);
      return { status: 200, body: this.botUser };
    }
    if (route === 'GET /applications/@me') {
      this.requireBotAuth(req);
      return { status: 200, body: { id: this.applicationId, name: 'pictalk', icon: null, description: '', bot_public: true, bot_require_code_grant: false, verify_key: this.publicKeyHex, flags: 0, bot: this.botUser } };
    }
    if (route === 'PUT /applications/:app/commands' || route === 'PUT /applications/:app/guilds/:guild/commands') {
      this.requireBotAuth(req);
      if (parts[1] !== this.applicationId) throw unknown('Application', 10002);
      const guildId = parts[2] === 'guilds' ? parts[3] : undefined;
      if (guildId !== undefined && !this.guilds.has(guildId)) throw new HttpError(403, { message: 'Missing Access', code: 50001 });
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
      if (route === 'POST /webhooks/:app/:token') {
        // Without `?wait=true` Discord answers 204 and no message (discord.js always asks to wait).
        const message = this.followUp(interaction, call);
        return url.searchParams.get('wait') === 'true' ? { status: 200, body: message } : { status: 204 };
      }
      const messageId = parts[4]!;
      if (route.endsWith('/messages/@original') || route.endsWith('/messages/:id')) {
        const id = messageId === '@original' ? interaction.originalId : messageId;
        const message = id ? this.messages.get(id) : undefined;
        if (!interaction.response) throw unknown('Webhook', 10015);
        if (!message) throw unknown('Message', 10008);
        if (method === 'GET') return { status: 200, body: message };
        if (method === 'PATCH') return { status: 200, body: this.edit(message, call.body ?? {}, call.files) };
        if (method === 'DELETE') {
          this.messages.delete(message.id);
          this.deletedMessages.push(message.id);
          return { status: 204 };
        }
      }
    }
    if (route === 'POST /users/@me/channels') {
      this.requireBotAuth(req);
      return { status: 200, body: this.openDm(call) };
    }
    if (route === 'POST /channels/:channel/messages') {
      this.requireBotAuth(req);
      if (!this.channels.has(parts[1]!)) throw unknown('Channel', 10003);
      return { status: 200, body: this.channelMessage(parts[1]!, call) };
    }
    if (route === 'DELETE /channels/:channel/messages/:id') {
      this.requireBotAuth(req);
      if (!this.channels.has(parts[1]!)) throw unknown('Channel', 10003);
      const message = this.messages.get(parts[3]!);
      if (!message || message.channel_id !== parts[1]) throw unknown('Message', 10008);
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
    const message = this.respond(interaction, call.body, call.files, 'callback');
    const { type, ephemeral } = interaction.response!;
    if (url.searchParams.get('with_response') !== 'true') return { status: 204 };
    return {
      status: 200,
      body: {
        interaction: { id, type: interaction.payload.type, response_message_id: message?.id, response_message_loading: type === 5, response_message_ephemeral: ephemeral },
        resource: { type, ...(message ? { message } : {}) },
      },
    };
  }

  /**
   * The initial response, from `POST /interactions/:id/:token/callback` or as an endpoint's HTTP answer: 4 and 5
   * create the original message (5: the "is thinking…" placeholder with the LOADING flag until the first edit); 6 and 7
   * make the message the component sits on the original, and 7 edits it with `data` at once. Returns the message made
   * or edited. The caller checks the deadline and that it is the first response.
   * @see https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-response-object-interaction-callback-type
   */
  private respond(interaction: FakeInteraction, body: Record<string, unknown> | undefined, files: UploadedFile[], via: 'callback' | 'http'): APIMessage | undefined {
    const type = body?.type;
    const data = (body?.data ?? {}) as Record<string, unknown>;
    const flags = Number(data.flags ?? 0);
    const ephemeral = Boolean(flags & MessageFlag.Ephemeral);
    let message: APIMessage | undefined;
    if (type === 4 || type === 5) {
      message = this.messageObject({
        id: snowflake(), channelId: String(interaction.payload.channel_id), author: this.botUser, content: type === 4 ? String(data.content ?? '') : '',
        attachments: this.attachmentsFor(files, [], data, String(interaction.payload.channel_id)),
        type: (interaction.payload.type as number) === 2 ? 20 : 0, flags: (ephemeral ? MessageFlag.Ephemeral : 0) | (type === 5 ? MessageFlag.Loading : 0),
        components: data.components as unknown[] | undefined, interaction,
      });
      this.messages.set(message.id, message);
      interaction.originalId = message.id;
    } else if (type === 6 || type === 7) {
      interaction.originalId = (interaction.payload.message as APIMessage | undefined)?.id;
      const current = interaction.originalId ? this.messages.get(interaction.originalId) : undefined;
      if (type === 7 && current && Object.keys(data).length > 0) message = this.edit(current, data, files);
    } else {
      throw invalidForm('type', `Expected an interaction callback type 4, 5, 6 or 7, got ${String(type)}`);
    }
    interaction.response = { type, at: Date.now(), ephemeral, via };
    return message;
  }

  private followUp(interaction: FakeInteraction, call: RestCall): APIMessage {
    if (!interaction.response) throw unknown('Webhook', 10015);
    const body = call.body ?? {};
    const flags = Number(body.flags ?? 0);
    const channelId = String(interaction.payload.channel_id);
    const attachments = this.attachmentsFor(call.files, [], body, channelId);
    validateMessage(String(body.content ?? ''), flags, attachments);
    const message = this.messageObject({
      id: snowflake(), channelId, author: this.botUser, content: String(body.content ?? ''), attachments, type: 0,
      flags: flags & (MessageFlag.Ephemeral | MessageFlag.IsVoiceMessage), components: body.components as unknown[] | undefined, embeds: body.embeds, interaction,
    });
    this.messages.set(message.id, message);
    return message;
  }

  /** `POST /users/@me/channels`: the DM channel with `recipient_id`, made on first use. */
  private openDm(call: RestCall): Record<string, unknown> {
    const recipientId = String(call.body?.recipient_id ?? '');
    if (!/^\d+$/.test(recipientId)) throw invalidForm('recipient_id', `Value "${recipientId}" is not snowflake.`);
    const known = Object.values(this.members).find((m) => m.user.id === recipientId)?.user;
    const recipient = known ?? [...this.channels.values()].find((channel) => channel.recipient?.id === recipientId)?.recipient ?? user(recipientId, 'user');
    return dmChannel(this.dmChannelFor(recipient), recipient);
  }

  /** A message the bot posts in a channel (a guild's or a DM) with its own token (no interaction behind it). */
  private channelMessage(channelId: string, call: RestCall): APIMessage {
    const body = call.body ?? {};
    const flags = Number(body.flags ?? 0);
    if (flags & MessageFlag.Ephemeral) throw invalidForm('flags', 'Only interaction responses can be ephemeral.');
    const attachments = this.attachmentsFor(call.files, [], body, channelId);
    validateMessage(String(body.content ?? ''), flags, attachments);
    const message = this.messageObject({
      id: snowflake(), channelId, author: this.botUser, content: String(body.content ?? ''), attachments, type: 0,
      flags: flags & MessageFlag.IsVoiceMessage, components: body.components as unknown[] | undefined, embeds: body.embeds,
    });
    this.messages.set(message.id, message);
    return message;
  }

  /** An edit of a message with a webhook's (or a type 7 response's) body: only the fields present change. */
  private edit(message: APIMessage, body: Record<string, unknown>, files: UploadedFile[]): APIMessage {
    const content = 'content' in body ? String(body.content ?? '') : message.content;
    const attachments = this.attachmentsFor(files, message.attachments, body, message.channel_id);
    validateMessage(content, message.flags ?? 0, attachments);
    const edited: APIMessage = {
      ...message, content, attachments, edited_timestamp: new Date().toISOString(),
      // The first edit of a deferred response ends its loading state.
      flags: (message.flags ?? 0) & ~MessageFlag.Loading,
      components: ('components' in body ? body.components ?? [] : message.components) as APIMessage['components'],
      embeds: embedsOf('embeds' in body ? body.embeds : message.embeds, attachments),
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
  private attachmentsFor(files: UploadedFile[], existing: APIAttachment[], body: Record<string, unknown>, channelId: string): APIAttachment[] {
    const described = Array.isArray(body.attachments) ? body.attachments as Array<Record<string, unknown>> : undefined;
    const uploads = new Map(files.map((file) => [/^files\[(\d+)\]$/.exec(file.field)?.[1] ?? file.field, file]));
    for (const file of files) {
      if (file.data.length > this.attachmentSizeLimit) throw new HttpError(413, { message: 'Request entity too large', code: 40005 });
    }
    const store = (file: UploadedFile, meta: Record<string, unknown>): APIAttachment => {
      const stored: StoredFile = { id: snowflake(), name: String(meta.filename ?? file.name), contentType: file.contentType, data: file.data };
      this.files.set(stored.id, stored);
      const extra: Partial<APIAttachment> = {};
      if (typeof meta.description === 'string') extra.description = meta.description;
      if (typeof meta.duration_secs === 'number') extra.duration_secs = meta.duration_secs;
      if (typeof meta.waveform === 'string') extra.waveform = meta.waveform;
      return attachmentObject(stored, this.baseUrl, channelId, extra);
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

/**
 * A message's embeds (at most 10), as Discord checks them: an image `attachment://NAME` must name one of the
 * message's attachments.
 * @see https://discord.com/developers/docs/reference#editing-message-attachments-using-attachments-within-embeds
 */
function embedsOf(value: unknown, attachments: readonly APIAttachment[]): APIMessage['embeds'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > 10) throw invalidForm('embeds', 'Must be an array of 10 or fewer embeds.');
  for (const [index, embed] of (value as Array<{ image?: { url?: unknown } }>).entries()) {
    const url = embed?.image?.url;
    if (typeof url === 'string' && url.startsWith('attachment://') && !attachments.some((a) => a.filename === url.slice('attachment://'.length))) {
      throw invalidForm(`embeds.${index}.image.url`, `Unknown attachment ${url}`);
    }
  }
  return value as APIMessage['embeds'];
}

/** An endpoint's answer to a signed POST. */
interface HttpAnswer { status: number; contentType?: string; raw: Buffer; ms: number; receivedAt: number }

/** Real tokens are base64url text of `interaction:<id>:<secret>`. */
function newToken(id: string): string {
  return Buffer.from(`interaction:${id}:${Math.random().toString(36).slice(2)}`).toString('base64url');
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
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
