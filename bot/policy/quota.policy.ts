/**
 * Daily quotas: which limit applies to a user, and what they have used today (UTC days).
 *
 * Precedence: a user override set by a moderator; else the most generous limit among the user's roles that have one
 * (so a "trusted" role can raise the space default, and a "new member" role alone can lower it); else the space
 * default; else the configured default.
 */
import { QUOTA_LIMIT_OPTION } from '../commands/option.spec.js';
import type { BotConfig } from '../config.js';
import type { BotStore } from '../store.js';
import type { Actor, QuotaKind, QuotaTarget } from '../types.js';

const DAY_MS = 24 * 3600 * 1000;

/** The ledger's day key: YYYY-MM-DD in UTC. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** When today's quota resets: the next 00:00 UTC. */
export const nextResetMs = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS + DAY_MS;

export type LimitSource = 'user' | 'role' | 'space' | 'config';

export interface EffectiveLimit {
  limit: number;
  source: LimitSource;
  roleId?: string;
}

export async function effectiveLimit(store: BotStore, config: BotConfig, actor: Actor, kind: QuotaKind): Promise<EffectiveLimit> {
  const own = await store.getLimit(actor.spaceId, { kind: 'user', id: actor.userId }, kind);
  if (own !== undefined) return { limit: own, source: 'user' };
  let best: EffectiveLimit | undefined;
  for (const roleId of actor.roleIds) {
    const limit = await store.getLimit(actor.spaceId, { kind: 'role', id: roleId }, kind);
    if (limit !== undefined && (best === undefined || limit > best.limit)) best = { limit, source: 'role', roleId };
  }
  if (best) return best;
  const space = await store.getLimit(actor.spaceId, { kind: 'default' }, kind);
  if (space !== undefined) return { limit: space, source: 'space' };
  return { limit: config.defaultDailyLimits[kind], source: 'config' };
}

export interface QuotaStanding {
  kind: QuotaKind;
  used: number;       // reserved + charged today
  inFlight: number;   // of which still reserved
  limit: number;
  source: LimitSource;
  remaining: number;
  resetsAt: number;
}

export async function standing(store: BotStore, config: BotConfig, actor: Actor, kind: QuotaKind, now: number): Promise<QuotaStanding> {
  const { limit, source } = await effectiveLimit(store, config, actor, kind);
  const usage = await store.usage(actor.spaceId, actor.userId, kind, utcDay(now));
  const used = usage.reserved + usage.charged;
  return { kind, used, inFlight: usage.reserved, limit, source, remaining: Math.max(0, limit - used), resetsAt: nextResetMs(now) };
}

export const targetLabel = (target: QuotaTarget): string =>
  target.kind === 'default' ? 'the space default' : `${target.kind} ${target.id}`;

export const QUOTA_LIMIT_MAX = QUOTA_LIMIT_OPTION.max;
