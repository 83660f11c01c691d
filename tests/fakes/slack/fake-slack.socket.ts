/**
 * The Socket Mode side of the fake Slack: the websocket whose URL apps.connections.open hands out (one-time tickets),
 * a `hello` on connect, server pings, envelopes `{envelope_id, type, payload, accepts_response_payload,
 * retry_attempt, retry_reason}`, and the acks `{envelope_id, payload?}` the app sends back, with their latency.
 * @see https://docs.slack.dev/apis/events-api/using-socket-mode
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { InboundKind } from './fake-slack.payloads.js';

export interface Envelope {
  envelope_id: string;
  type: InboundKind;
  payload: Record<string, unknown>;
  accepts_response_payload: boolean;
  retry_attempt?: number;
  retry_reason?: string;
  sentAt: number;
  ack?: { at: number; latencyMs: number; payload?: unknown };
}

export interface DeliverOptions {
  retryAttempt?: number;
  retryReason?: string;
}

export class FakeSocketMode {
  readonly envelopes: Envelope[] = [];
  /** Acks whose envelope id the fake never sent (a bug in the client). */
  readonly strayAcks: unknown[] = [];
  readonly connections: WebSocket[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly tickets = new Set<string>();
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(private readonly appId: string, private readonly pingIntervalMs = 10_000) {
    this.pingTimer = setInterval(() => { for (const socket of this.open()) socket.ping('fake-slack'); }, pingIntervalMs);
    this.pingTimer.unref();
  }

  /** For apps.connections.open: a URL with a one-time ticket. */
  issueUrl(baseWsUrl: string): string {
    const ticket = randomUUID();
    this.tickets.add(ticket);
    return `${baseWsUrl}/link/?ticket=${ticket}&app_id=${this.appId}`;
  }

  /** The HTTP server's `upgrade` handler. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (url.pathname !== '/link/' || !this.tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws));
  }

  private onConnection(ws: WebSocket): void {
    this.connections.push(ws);
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.send(JSON.stringify({
      type: 'hello',
      num_connections: this.open().length,
      debug_info: { host: 'applink-fake', build_number: 1, approximate_connection_time: 18060 },
      connection_info: { app_id: this.appId },
    }));
  }

  private onMessage(text: string): void {
    let message: { envelope_id?: string; payload?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      this.strayAcks.push(text);
      return;
    }
    const envelope = this.envelopes.find((e) => e.envelope_id === message.envelope_id);
    if (!envelope || envelope.ack) {
      this.strayAcks.push(message);
      return;
    }
    const at = Date.now();
    envelope.ack = { at, latencyMs: at - envelope.sentAt, payload: message.payload };
  }

  open(): WebSocket[] {
    return this.connections.filter((ws) => ws.readyState === ws.OPEN);
  }

  /** Send one envelope on the newest open connection. */
  deliver(type: InboundKind, payload: Record<string, unknown>, options: DeliverOptions = {}): Envelope {
    const socket = this.open().at(-1);
    if (!socket) throw new Error('fake Slack: no Socket Mode connection is open');
    const envelope: Envelope = {
      envelope_id: randomUUID(),
      type,
      payload,
      // Slack lets commands and interactivity answer through the ack; events never.
      accepts_response_payload: type !== 'events_api',
      sentAt: Date.now(),
    };
    if (type === 'events_api') {
      envelope.retry_attempt = options.retryAttempt ?? 0;
      envelope.retry_reason = options.retryReason ?? '';
    } else if (options.retryAttempt !== undefined) {
      envelope.retry_attempt = options.retryAttempt;
      envelope.retry_reason = options.retryReason ?? 'timeout';
    }
    this.envelopes.push(envelope);
    const { sentAt: _sentAt, ack: _ack, ...wire } = envelope;
    socket.send(JSON.stringify(wire));
    return envelope;
  }

  /** Slack's redelivery of an envelope it thinks was lost: the same payload, a new envelope id, `retry_attempt` set. */
  redeliver(envelope: Envelope, retryAttempt = 1, retryReason = 'timeout'): Envelope {
    return this.deliver(envelope.type, envelope.payload, { retryAttempt, retryReason });
  }

  /** Ask the client to reconnect, as Slack does before recycling a connection. */
  sendDisconnect(reason = 'refresh_requested'): void {
    for (const socket of this.open()) socket.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-fake' } }));
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const socket of this.connections) socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
