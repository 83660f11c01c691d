/**
 * The fake Discord gateway: v10, JSON encoding, no transport compression, one session per shard.
 * HELLO -> IDENTIFY (with `shard: [id, count]`) -> READY (+ GUILD_CREATE for that shard's guilds), heartbeats and their
 * ACKs, RESUME with replay of the dispatches the client missed, and server-side disconnects to exercise resuming.
 * A guild's events go to shard `(guild_id >> 22) % shard_count`; DMs go to shard 0.
 * @see https://discord.com/developers/docs/events/gateway#connection-lifecycle
 * @see https://discord.com/developers/docs/events/gateway#sharding
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';

const Op = { Dispatch: 0, Heartbeat: 1, Identify: 2, Resume: 6, Reconnect: 7, InvalidSession: 9, Hello: 10, HeartbeatAck: 11 } as const;

/** Close codes the fake sends. @see https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes */
export const GatewayClose = { UnknownError: 4000, DecodeError: 4002, AuthenticationFailed: 4004, SessionTimedOut: 4009, InvalidShard: 4010, ShardingRequired: 4011 } as const;

interface Dispatch { op: 0; t: string; s: number; d: unknown }

interface Session {
  id: string;
  shard: number;
  seq: number;
  history: Dispatch[];
  socket: WebSocket | null;
}

/** `[shard_id, num_shards]`, as in IDENTIFY and READY. */
export type ShardPair = [number, number];

/** The shard a guild's events go to. @see https://discord.com/developers/docs/events/gateway#sharding-sharding-formula */
export function shardOf(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

export interface GatewayOptions {
  token: string;
  heartbeatIntervalMs: number;
  /** How many shards the bot must run (`GET /gateway/bot`'s `shards`); default 1. */
  shardCount?: number;
  /** READY's `d`, given the new session id and its shard. */
  ready(sessionId: string, shard: ShardPair): Record<string, unknown>;
  /** Dispatches that follow READY on one shard (GUILD_CREATE for every guild of that shard). */
  afterReady(shardId: number): Array<{ t: string; d: unknown }>;
}

export class FakeGateway {
  /** Every IDENTIFY with the right token; `closedWith` is set when its shard was refused (4010, 4011). */
  readonly identifies: Array<{ at: number; d: Record<string, unknown>; shard: ShardPair; closedWith?: number }> = [];
  readonly resumes: Array<{ at: number; seq: number; replayed: number; shard: number }> = [];
  readonly shardCount: number;
  heartbeats = 0;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sessions = new Map<number, Session>();
  private sessionCounter = 0;

  constructor(private readonly options: GatewayOptions) {
    this.shardCount = options.shardCount ?? 1;
    if (!Number.isInteger(this.shardCount) || this.shardCount < 1) throw new Error(`fake gateway: shardCount must be a positive integer, got ${this.shardCount}`);
    this.wss.on('connection', (socket, request) => this.onConnection(socket, request));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    // discord.js asks for `?v=10&encoding=json` (and `compress=zlib-stream` only when zlib-sync is installed).
    if (url.searchParams.get('v') !== '10' || url.searchParams.get('encoding') !== 'json' || url.searchParams.has('compress')) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.wss.emit('connection', ws, request));
  }

  /** Every shard has a session with an open socket (with one shard: the client is connected). */
  get connected(): boolean {
    return this.connectedShards().length === this.shardCount;
  }

  /** The shards whose session has an open socket, in order. */
  connectedShards(): number[] {
    return [...this.sessions.values()].filter((session) => session.socket?.readyState === WebSocket.OPEN).map((session) => session.shard).sort((a, b) => a - b);
  }

  /** Whether the shard has a session (identified, possibly away and resumable). */
  hasSession(shardId: number): boolean {
    return this.sessions.has(shardId);
  }

  /** Shard 0's last sequence number. */
  get sequence(): number {
    return this.sequenceOf(0);
  }

  sequenceOf(shardId: number): number {
    return this.sessions.get(shardId)?.seq ?? 0;
  }

  shardOf(guildId: string): number {
    return shardOf(guildId, this.shardCount);
  }

  /** Send one dispatch on the shard it belongs to: its `guild_id`'s shard, or shard 0 (DMs, events without a guild). */
  dispatch(t: string, d: unknown): number {
    const guildId = d && typeof d === 'object' && 'guild_id' in d ? (d as { guild_id?: unknown }).guild_id : undefined;
    return this.dispatchTo(typeof guildId === 'string' ? this.shardOf(guildId) : 0, t, d);
  }

  /** Send (or, while the shard's client is away, keep for replay) one dispatch on one shard; throws if it has no session. */
  dispatchTo(shardId: number, t: string, d: unknown): number {
    const session = this.sessions.get(shardId);
    if (!session) throw new Error(`The fake gateway has no session on shard ${shardId}: the client has not identified it (connected: [${this.connectedShards().join(', ')}])`);
    return this.send(session, t, d);
  }

  /** Close one shard's connection from the server side; 4000 (unknown error) makes the client resume, as after a network blip. */
  disconnect(code: number = GatewayClose.UnknownError, reason = 'fake: server-side disconnect', shardId = 0): void {
    const session = this.sessions.get(shardId);
    const socket = session?.socket;
    if (session) session.socket = null;
    socket?.close(code, reason);
  }

  /** Ask one shard's client to reconnect and resume (op 7), as Discord does before moving a session. */
  requestReconnect(shardId = 0): void {
    this.sessions.get(shardId)?.socket?.send(JSON.stringify({ op: Op.Reconnect, d: null, s: null, t: null }));
  }

  async close(): Promise<void> {
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private send(session: Session, t: string, d: unknown): number {
    const payload: Dispatch = { op: Op.Dispatch, t, s: ++session.seq, d };
    session.history.push(payload);
    if (session.socket?.readyState === WebSocket.OPEN) session.socket.send(JSON.stringify(payload));
    return payload.s;
  }

  private onConnection(socket: WebSocket, _request: IncomingMessage): void {
    socket.send(JSON.stringify({ op: Op.Hello, d: { heartbeat_interval: this.options.heartbeatIntervalMs }, s: null, t: null }));
    socket.on('message', (raw) => {
      let payload: { op: number; d: unknown };
      try {
        payload = JSON.parse(raw.toString()) as { op: number; d: unknown };
      } catch {
        socket.close(GatewayClose.DecodeError, 'Error while decoding payload.');
        return;
      }
      this.onPayload(socket, payload);
    });
    socket.on('close', () => {
      for (const session of this.sessions.values()) if (session.socket === socket) session.socket = null;
    });
  }

  private onPayload(socket: WebSocket, payload: { op: number; d: unknown }): void {
    switch (payload.op) {
      case Op.Heartbeat:
        this.heartbeats += 1;
        socket.send(JSON.stringify({ op: Op.HeartbeatAck, d: null, s: null, t: null }));
        return;
      case Op.Identify:
        this.identify(socket, payload.d as Record<string, unknown>);
        return;
      case Op.Resume:
        this.resume(socket, payload.d as { token: string; session_id: string; seq: number });
        return;
      default:
        // Presence and voice updates are not part of pictalk; Discord would accept them, so the fake ignores them.
        return;
    }
  }

  private identify(socket: WebSocket, d: Record<string, unknown>): void {
    if (d.token !== this.options.token) {
      socket.close(GatewayClose.AuthenticationFailed, 'Authentication failed.');
      return;
    }
    // No `shard` field means [0, 1]: fine for a bot that needs one shard, "sharding required" for one that needs more.
    const shard: ShardPair = Array.isArray(d.shard) ? [Number(d.shard[0]), Number(d.shard[1])] : [0, 1];
    const identify: (typeof this.identifies)[number] = { at: Date.now(), d, shard };
    this.identifies.push(identify);
    const refusal = this.shardRefusal(shard);
    if (refusal) {
      identify.closedWith = refusal.code;
      socket.close(refusal.code, refusal.reason);
      return;
    }
    const [shardId] = shard;
    this.sessions.get(shardId)?.socket?.close(GatewayClose.SessionTimedOut, 'Session replaced');
    const session: Session = { id: `fake-session-${++this.sessionCounter}`, shard: shardId, seq: 0, history: [], socket };
    this.sessions.set(shardId, session);
    this.send(session, 'READY', this.options.ready(session.id, shard));
    for (const { t, d: data } of this.options.afterReady(shardId)) this.send(session, t, data);
  }

  /**
   * Discord closes with 4010 for a shard that does not exist (id out of range, malformed) and 4011 when the bot runs
   * fewer shards than it must. A count above the required one is refused too (4010): the fake routes by its own count.
   */
  private shardRefusal([id, count]: ShardPair): { code: number; reason: string } | undefined {
    const valid = Number.isInteger(id) && Number.isInteger(count) && count >= 1 && id >= 0 && id < count;
    if (!valid || count > this.shardCount) return { code: GatewayClose.InvalidShard, reason: 'Invalid shard.' };
    if (count < this.shardCount) return { code: GatewayClose.ShardingRequired, reason: 'Sharding required.' };
    return undefined;
  }

  private resume(socket: WebSocket, d: { token: string; session_id: string; seq: number }): void {
    if (d.token !== this.options.token) {
      socket.close(GatewayClose.AuthenticationFailed, 'Authentication failed.');
      return;
    }
    const session = [...this.sessions.values()].find((candidate) => candidate.id === d.session_id);
    if (!session || d.seq > session.seq) {
      socket.send(JSON.stringify({ op: Op.InvalidSession, d: false, s: null, t: null }));
      return;
    }
    session.socket = socket;
    // Replay what the client missed in order, then RESUMED, as Discord does.
    const missed = session.history.filter((event) => event.s > d.seq);
    for (const event of missed) socket.send(JSON.stringify(event));
    this.resumes.push({ at: Date.now(), seq: d.seq, replayed: missed.length, shard: session.shard });
    this.send(session, 'RESUMED', null);
  }
}
