/**
 * Discord's interactions endpoint: Discord POSTs every interaction to `POST /discord/interactions`, signed with the
 * application's Ed25519 key, and the HTTP answer is the initial response. Nothing here keeps per-interaction state
 * that another process would need, so any number of identical fronts can stand behind one load balancer.
 *
 * In order, before anything else happens: the body's declared size (refused over the limit before it is read), the
 * signature headers, the signature over timestamp + raw body (401 when missing or wrong), the timestamp's age (a
 * replayed request is refused), then the JSON.
 * @see https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InteractionResponseType, Routes, type APIInteraction, type APIMessage, type REST } from 'discord.js';
import { PictalkError, describe } from '../../common/errors.js';
import type { EndpointMetrics } from '../../inference/metrics.js';
import type { Logger } from './discord.conversation.js';
import type { InteractionHandler } from './interaction.handler.js';

export const INTERACTIONS_PATH = '/discord/interactions';
/** Interaction payloads are a few kB (a message command's target message with its attachments stays far below this). */
export const MAX_INTERACTION_BYTES = 256 * 1024;
/** How far a signature's timestamp may be from this machine's clock: a captured request cannot be replayed later. */
export const MAX_SIGNATURE_AGE_S = 5 * 60;
const PLACEHOLDER_WAIT_MS = 2000;

// An Ed25519 public key as SubjectPublicKeyInfo DER is this fixed prefix and the 32 raw bytes.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const HEX_KEY = /^[0-9a-f]{64}$/i;
const HEX_SIGNATURE = /^[0-9a-f]{128}$/i;

/** The application's public key (64 hex characters, from the developer portal) as a key object; throws naming it. */
export function publicKeyFromHex(hex: string): KeyObject {
  if (!HEX_KEY.test(hex)) {
    throw new PictalkError('config.invalid', `Expected DISCORD_PUBLIC_KEY to be 64 hexadecimal characters, got ${describe(hex.length > 80 ? `${hex.slice(0, 80)}…` : hex)}`, { setting: 'DISCORD_PUBLIC_KEY' });
  }
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });
  } catch {
    throw new PictalkError('config.invalid', 'Expected DISCORD_PUBLIC_KEY to be an Ed25519 public key, but it is not a valid one', { setting: 'DISCORD_PUBLIC_KEY' });
  }
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string; label: 'missing_signature' | 'malformed_signature' | 'bad_signature' | 'stale' };

/** Discord's rule: Ed25519 over `X-Signature-Timestamp` + raw body, and a timestamp close to now. */
export function checkSignature(key: KeyObject, signature: string | undefined, timestamp: string | undefined, body: Buffer, now = Date.now()): SignatureCheck {
  if (!signature || !timestamp) return { ok: false, reason: 'missing signature headers', label: 'missing_signature' };
  if (!HEX_SIGNATURE.test(signature) || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed signature headers', label: 'malformed_signature' };
  const valid = verify(null, Buffer.concat([Buffer.from(timestamp, 'utf8'), body]), key, Buffer.from(signature, 'hex'));
  if (!valid) return { ok: false, reason: 'bad signature', label: 'bad_signature' };
  if (Math.abs(now / 1000 - Number(timestamp)) > MAX_SIGNATURE_AGE_S) return { ok: false, reason: 'stale timestamp', label: 'stale' };
  return { ok: true };
}

export interface EndpointOptions {
  publicKey: string;
  port: number;
  /** Interface to listen on (default all). TLS is terminated in front of pictalk. */
  host?: string;
  handler: InteractionHandler;
  rest: REST;
  applicationId: string;
  logger: Logger;
  /** Acknowledgement times and refusals, for `pictalk_interaction_ack_seconds` and `pictalk_interactions_refused_total`. */
  metrics?: EndpointMetrics;
}

export interface InteractionsEndpoint {
  server: Server;
  port: number;
  /** Stop taking interactions; commands already answered run on to their reply (the queue's shutdown waits for them). */
  close(): Promise<void>;
  /** Commands accepted and not yet replied to. */
  readonly inFlight: number;
}

class Refusal extends Error {
  constructor(readonly status: number, readonly reason: string, readonly label: string) {
    super(reason);
  }
}

/** The initial responses by name, for the acknowledgement metric. */
const RESPONSE_NAMES: Partial<Record<number, string>> = {
  [InteractionResponseType.Pong]: 'pong',
  [InteractionResponseType.ChannelMessageWithSource]: 'message',
  [InteractionResponseType.DeferredChannelMessageWithSource]: 'deferred',
  [InteractionResponseType.DeferredMessageUpdate]: 'deferred_update',
  [InteractionResponseType.ApplicationCommandAutocompleteResult]: 'autocomplete',
};

/** The raw body, refused by its declared size before reading and capped while reading (a body without a length). */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > MAX_INTERACTION_BYTES) throw new Refusal(413, `body of ${declared} bytes is over the limit of ${MAX_INTERACTION_BYTES}`, 'too_large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_INTERACTION_BYTES) throw new Refusal(413, `body over the limit of ${MAX_INTERACTION_BYTES} bytes`, 'too_large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startInteractionsEndpoint(options: EndpointOptions): Promise<InteractionsEndpoint> {
  const key = publicKeyFromHex(options.publicKey);
  const { handler, rest, applicationId, logger, metrics } = options;
  const running = new Set<Promise<void>>();

  /**
   * After a public deferred reply: learn the placeholder's id, so a reply after the token's life can remove it. The
   * command waits for this, so it is given PLACEHOLDER_WAIT_MS at most; without the id only that removal is lost.
   */
  async function placeholderOf(interaction: APIInteraction): Promise<string | undefined> {
    try {
      const original = (await rest.get(Routes.webhookMessage(applicationId, interaction.token, '@original'), {
        auth: false, signal: AbortSignal.timeout(PLACEHOLDER_WAIT_MS),
      })) as APIMessage;
      return original.id;
    } catch (error) {
      logger.warn('discord: could not read the deferred reply', { interaction: interaction.id, error: String(error) });
      return undefined;
    }
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://endpoint');
    if (url.pathname !== INTERACTIONS_PATH) throw new Refusal(404, 'not found', 'not_found');
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new Refusal(405, 'only POST', 'method');
    }
    const receivedAt = Date.now();
    const body = await readBody(req);
    const header = (name: string) => (typeof req.headers[name] === 'string' ? req.headers[name] as string : undefined);
    const check = checkSignature(key, header('x-signature-ed25519'), header('x-signature-timestamp'), body);
    if (!check.ok) throw new Refusal(401, check.reason, check.label);
    let interaction: APIInteraction;
    try {
      interaction = JSON.parse(body.toString('utf8')) as APIInteraction;
      if (typeof interaction !== 'object' || interaction === null || typeof interaction.type !== 'number' || typeof interaction.id !== 'string') throw new Error('not an interaction');
    } catch {
      throw new Refusal(400, 'the body is not an interaction object', 'malformed');
    }
    const received = await handler.acknowledge(interaction, receivedAt);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(received.response));
    metrics?.acknowledged(RESPONSE_NAMES[received.response.type] ?? String(received.response.type), (Date.now() - receivedAt) / 1000);
    if (received.duplicate) logger.info('discord: an interaction delivered again; answered, not run again', { interaction: interaction.id });
    const { run } = received;
    if (!run) return;
    const publicReply = received.response.type === InteractionResponseType.DeferredChannelMessageWithSource && !((received.response.data?.flags ?? 0) & 64);
    // The command runs after this turn of the event loop: the answers to the other requests that arrived together
    // go out first, so a burst is acknowledged before any of it is worked on.
    const job = (async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return run(publicReply ? await placeholderOf(interaction) : undefined);
    })()
      .catch((error: unknown) => logger.error('discord: an interaction failed', { interaction: interaction.id, error: String(error) }))
      .finally(() => running.delete(job));
    running.add(job);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((error: unknown) => {
      const refusal = error instanceof Refusal ? error : new Refusal(500, String(error), 'error');
      if (refusal.status === 500) logger.error('discord: the interactions endpoint failed', { error: refusal.reason });
      metrics?.refused(refusal.label);
      if (res.headersSent) return;
      // Close the connection after a refusal: an unread body (over the limit) is not worth draining.
      res.writeHead(refusal.status, { 'content-type': 'text/plain', connection: 'close' }).end(refusal.status === 401 ? 'invalid request signature' : refusal.reason);
      if (refusal.status === 413) req.destroy();
    });
  });
  // Discord waits 3 s for an answer; a client that trickles its request is cut off long before that matters.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(`discord: interactions endpoint on :${port}${INTERACTIONS_PATH}`);
  return {
    server,
    port,
    get inFlight() {
      return running.size;
    },
    async close() {
      if (!server.listening) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
