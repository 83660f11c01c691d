/**
 * The fake Discord gateway: v10, JSON encoding, no transport compression.
 * HELLO -> IDENTIFY -> READY (+ GUILD_CREATE), heartbeats and their ACKs, RESUME with replay of the dispatches the
 * client missed, and server-side disconnects to exercise resuming.
 * @see https://discord.com/developers/docs/events/gateway#connection-lifecycle
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';

const Op = { Dispatch: 0, Heartbeat: 1, Identify: 2, Resume: 6, Reconnect: 7, InvalidSession: 9, Hello: 10, HeartbeatAck: 11 } as const;

interface Dispatch { op: 0; t: string; s: number; d: unknown }

interface Session {
  id: string;
  seq: number;
  history: Dispatch[];
  socket: WebSocket | null;
}

export interface GatewayOptions {
  token: string;
  heartbeatIntervalMs: number;
  /** READY's `d`, given the new session id. */
  ready(sessionId: string): Record<string, unknown>;
  /** Dispatches that follow READY (GUILD_CREATE for every guild). */
  afterReady(): Array<{ t: string; d: unknown }>;
}

export class FakeGateway {
  readonly identifies: Array<{ at: number; d: Record<string, unknown> }> = [];
  readonly resumes: Array<{ at: number; seq: number; replayed: number }> = [];
  heartbeats = 0;
  private readonly wss = new WebSocketServer({ noServer: true });
  private session: Session | null = null;
  private sessionCounter = 0;

  constructor(private readonly options: GatewayOptions) {
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

  get connected(): boolean {
    return this.session?.socket?.readyState === WebSocket.OPEN;
  }

  get sequence(): number {
    return this.session?.seq ?? 0;
  }

  /** Send (or, while the client is away, keep for replay) one dispatch. */
  dispatch(t: string, d: unknown): number {
    const session = this.session;
    if (!session) throw new Error('The fake gateway has no session: the client has not identified');
    const payload: Dispatch = { op: Op.Dispatch, t, s: ++session.seq, d };
    session.history.push(payload);
    if (session.socket?.readyState === WebSocket.OPEN) session.socket.send(JSON.stringify(payload));
    return payload.s;
  }

  /** Close the connection from the server side; 4000 (unknown error) makes the client resume, as after a network blip. */
  disconnect(code = 4000, reason = 'fake: server-side disconnect'): void {
    const socket = this.session?.socket;
    if (this.session) this.session.socket = null;
    socket?.close(code, reason);
  }

  /** Ask the client to reconnect and resume (op 7), as Discord does before moving a session. */
  requestReconnect(): void {
    this.session?.socket?.send(JSON.stringify({ op: Op.Reconnect, d: null, s: null, t: null }));
  }

  async close(): Promise<void> {
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(socket: WebSocket, _request: IncomingMessage): void {
    socket.send(JSON.stringify({ op: Op.Hello, d: { heartbeat_interval: this.options.heartbeatIntervalMs }, s: null, t: null }));
    socket.on('message', (raw) => {
      let payload: { op: number; d: unknown };
      try {
        payload = JSON.parse(raw.toString()) as { op: number; d: unknown };
      } catch {
        socket.close(4002, 'Error while decoding payload.');
        return;
      }
      this.onPayload(socket, payload);
    });
    socket.on('close', () => {
      if (this.session?.socket === socket) this.session.socket = null;
    });
  }

  private onPayload(socket: WebSocket, payload: { op: number; d: unknown }): void {
    switch (payload.op) {
      case Op.Heartbeat:
        this.heartbeats += 1;
        socket.send(JSON.stringify({ op: Op.HeartbeatAck, d: null, s: null, t: null }));
        return;
      case Op.Identify: {
        const d = payload.d as Record<string, unknown>;
        if (d.token !== this.options.token) {
          socket.close(4004, 'Authentication failed.');
          return;
        }
        this.identifies.push({ at: Date.now(), d });
        this.session?.socket?.close(4009, 'Session replaced');
        const session: Session = { id: `fake-session-${++this.sessionCounter}`, seq: 0, history: [], socket };
        this.session = session;
        this.dispatch('READY', this.options.ready(session.id));
        for (const { t, d: data } of this.options.afterReady()) this.dispatch(t, data);
        return;
      }
      case Op.Resume: {
        const d = payload.d as { token: string; session_id: string; seq: number };
        const session = this.session;
        if (d.token !== this.options.token) {
          socket.close(4004, 'Authentication failed.');
          return;
        }
        if (!session || session.id !== d.session_id || d.seq > session.seq) {
          socket.send(JSON.stringify({ op: Op.InvalidSession, d: false, s: null, t: null }));
          return;
        }
        session.socket = socket;
        // Replay what the client missed in order, then RESUMED, as Discord does.
        const missed = session.history.filter((event) => event.s > d.seq);
        for (const event of missed) socket.send(JSON.stringify(event));
        this.resumes.push({ at: Date.now(), seq: d.seq, replayed: missed.length });
        this.dispatch('RESUMED', null);
        return;
      }
      default:
        // Presence and voice updates are not part of pictalk; Discord would accept them, so the fake ignores them.
        return;
    }
  }
}
