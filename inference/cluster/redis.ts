/**
 * The Redis connections of a cluster process, and the scripts of scripts.ts as typed calls. Every connection has an
 * error listener (a Redis restart is an event to log, never a crash) and reconnects by itself.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { PictalkError } from '../../common/errors.js';
import { JOB_KINDS } from '../core.js';
import type { JobKind } from '../types.js';
import { ANSWERED, ATTACHABLE, CANCEL, CLAIM, POP, POSITIONS, RELEASE, RENEW, SETTLE, START, SUBMIT, TAKE } from './scripts.js';

export const DEFAULT_PREFIX = 'pictalk';

export interface RedisLog {
  warn(message: string, fields?: Record<string, unknown>): void;
}

/**
 * A connection. `commands` fail fast while Redis is away (a front must answer "busy, try again" within the platform's
 * deadline); `blocking` ones (BullMQ's, subscribers) wait for Redis to come back instead.
 */
export function connect(url: string, use: 'commands' | 'blocking', log: RedisLog, name: string): Redis {
  const options: RedisOptions = use === 'commands'
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000, connectTimeout: 2000 }
    : { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 2000 };
  const redis = new Redis({ ...redisOptionsOf(url), ...options, connectionName: name, retryStrategy: (times) => Math.min(50 * times, 1000) });
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) log.warn(`Redis (${name}) is unreachable; retrying`, { error: error.message });
    down = true;
  });
  redis.on('ready', () => { down = false; });
  return redis;
}

/**
 * A `redis://[user:pass@]host:port/db` (or `rediss://` for TLS) URL as client options, for ioredis and for BullMQ's own
 * connections; anything else is `config.invalid` naming PICTALK_REDIS_URL.
 */
export function redisOptionsOf(url: string): RedisOptions {
  let parsed: URL;
  try { parsed = new URL(url); } catch { parsed = new URL('invalid:'); }
  const db = parsed.pathname.replace(/^\//, '');
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname || (db !== '' && !/^\d+$/.test(db))) {
    throw new PictalkError('config.invalid', `PICTALK_REDIS_URL: expected redis://host:port/db, got ${JSON.stringify(url)}`);
  }
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : 6379,
    db: db === '' ? 0 : Number(db),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Quit a connection, ignoring what a connection says while it closes. */
export async function closeQuietly(...connections: Redis[]): Promise<void> {
  await Promise.allSettled(connections.map(async (redis) => {
    redis.removeAllListeners('error');
    redis.on('error', () => undefined);
    if (redis.status === 'ready') await redis.quit();
    else redis.disconnect();
  }));
}

/** How long a process waits for Redis at start-up before it gives up, naming PICTALK_REDIS_URL. */
export const REDIS_CONNECT_MS = 10_000;

/** Resolves once the connection is ready; rejects naming the setting after `ms`. */
export async function ready(redis: Redis, ms: number, setting = 'PICTALK_REDIS_URL'): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new PictalkError('config.invalid', `${setting}: Redis did not answer within ${ms / 1000} s; check that it runs at that address`));
    }, ms);
    const onReady = (): void => { clearTimeout(timer); resolve(); };
    redis.once('ready', onReady);
  });
}

/**
 * Whether Redis answers at `url` within `ms`: resolves, or rejects naming PICTALK_REDIS_URL. A worker asks before it
 * spends minutes loading a real model, so a wrong address is said at once.
 */
export async function probe(url: string, log: RedisLog, ms = REDIS_CONNECT_MS): Promise<void> {
  const redis = connect(url, 'commands', log, 'pictalk-probe');
  try {
    await ready(redis, ms);
  } finally {
    await closeQuietly(redis);
  }
}

type Reply = string | number | null | Reply[];

export interface Scripts {
  submit(args: { id: string; kind: string; space: string; user: string; input: string; maxQueued: number; maxPerUser: number; timeoutMs: number; inputTtl: number; front: string; followMs: number }): Promise<Reply[]>;
  claim(front: string, followMs: number, ids: readonly string[]): Promise<string[]>;
  renew(front: string, followMs: number, ids: readonly string[]): Promise<string[]>;
  release(front: string, ids: readonly string[]): Promise<void>;
  answered(front: string, ttlSecs: number, ids: readonly string[]): Promise<void>;
  attachable(ids: readonly string[]): Promise<string[]>;
  take(key: string, capacity: number, windowMs: number): Promise<{ ok: boolean; retryAfterMs: number }>;
  pop(kind: string): Promise<string | null>;
  start(id: string, worker: string): Promise<Reply[]>;
  settle(id: string, outcome: 'ok' | 'error', payload: string, ttl: number): Promise<boolean>;
  cancel(id: string, errorJson: string, ttl: number): Promise<boolean>;
  positions(kind: string, ids: readonly string[]): Promise<number[]>;
}

const SOURCES = { pictalkAttachable: ATTACHABLE, pictalkTake: TAKE, pictalkClaim: CLAIM, pictalkRenew: RENEW, pictalkRelease: RELEASE, pictalkAnswered: ANSWERED, pictalkSubmit: SUBMIT, pictalkPop: POP, pictalkStart: START, pictalkSettle: SETTLE, pictalkCancel: CANCEL, pictalkPositions: POSITIONS };

export function scripts(redis: Redis, prefix: string): Scripts {
  for (const [name, lua] of Object.entries(SOURCES)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 0, lua });
  }
  // ioredis adds the defined commands at run time, each an EVALSHA that falls back to EVAL
  const call = (name: keyof typeof SOURCES, ...args: Array<string | number>): Promise<Reply> =>
    (redis as unknown as Record<string, (...a: Array<string | number>) => Promise<Reply>>)[name]!(prefix, ...args);
  return {
    submit: async (a) => await call('pictalkSubmit', a.id, a.kind, a.space, a.user, a.input, a.maxQueued, a.maxPerUser, a.timeoutMs, Date.now(), a.inputTtl, a.front, a.followMs) as Reply[],
    take: async (key, capacity, windowMs) => {
      const [ok, retryAfterMs] = await call('pictalkTake', key, capacity, windowMs) as [number, number];
      return { ok: ok === 1, retryAfterMs };
    },
    attachable: async (ids) => ids.length === 0 ? [] : (await call('pictalkAttachable', ...ids) as string[]),
    claim: async (front, followMs, ids) => ids.length === 0 ? [] : (await call('pictalkClaim', front, followMs, ...ids) as string[]),
    renew: async (front, followMs, ids) => ids.length === 0 ? [] : (await call('pictalkRenew', front, followMs, ...ids) as string[]),
    release: async (front, ids) => { if (ids.length > 0) await call('pictalkRelease', front, ...ids); },
    answered: async (front, ttlSecs, ids) => { if (ids.length > 0) await call('pictalkAnswered', front, ttlSecs, ...ids); },
    pop: async (kind) => await call('pictalkPop', kind, Date.now()) as string | null,
    start: async (id, worker) => await call('pictalkStart', id, worker, Date.now()) as Reply[],
    settle: async (id, outcome, payload, ttl) => (await call('pictalkSettle', id, outcome, payload, ttl)) === 1,
    cancel: async (id, errorJson, ttl) => (await call('pictalkCancel', id, errorJson, ttl)) === 1,
    positions: async (kind, ids) => ids.length === 0 ? [] : (await call('pictalkPositions', kind, ...ids) as number[]),
  };
}

export const keys = (prefix: string) => ({
  job: (id: string) => `${prefix}:job:${id}`,
  result: (id: string) => `${prefix}:result:${id}`,
  events: `${prefix}:events`,
  frontEvents: (front: string) => `${prefix}:events:${front}`,
  wake: `${prefix}:wake`,
  cancel: `${prefix}:cancel`,
  dispatched: `${prefix}:dispatched`,
  unfinished: `${prefix}:unfinished`,
  follow: (id: string) => `${prefix}:follow:${id}`,
  waitingKinds: `${prefix}:waiting:kinds`,
  runningKinds: `${prefix}:running:kinds`,
  /** BullMQ's queue name for a kind (under BullMQ's own prefix, the same P). */
  queue: (kind: string) => `jobs-${kind}`,
});

/** Jobs waiting and running per kind in the whole cluster. */
export async function readStats(redis: Redis, k: ReturnType<typeof keys>): Promise<{ queued: Record<JobKind, number>; running: Record<JobKind, number> }> {
  const [waiting, running] = await Promise.all([redis.hgetall(k.waitingKinds), redis.hgetall(k.runningKinds)]);
  const count = (hash: Record<string, string>): Record<JobKind, number> =>
    Object.fromEntries(JOB_KINDS.map((kind) => [kind, Math.max(0, Number(hash[kind] ?? 0))])) as Record<JobKind, number>;
  return { queued: count(waiting), running: count(running) };
}

/** Redis away, as the user hears it: retryable, so the bot says "try again in a moment". */
export function unreachable(error: unknown): PictalkError {
  return new PictalkError('queue.busy', 'The job queue cannot be reached right now; try again in a moment',
    { reason: 'redis', error: error instanceof Error ? error.message : String(error) });
}
