/**
 * Who is a workspace admin or owner, from users.info (scope `users:read`), cached briefly: a command burst costs one
 * lookup, and a demoted admin loses moderator rights within `ttlMs`. A failed lookup counts as "not an admin" and is
 * not cached, so the next command asks again.
 * @see https://docs.slack.dev/reference/methods/users.info
 */
import type { webApi } from '@slack/bolt';

export interface SlackUserFacts {
  moderator: boolean;
  displayName?: string;
}

interface UsersInfoUser {
  is_admin?: boolean;
  is_owner?: boolean;
  is_primary_owner?: boolean;
  name?: string;
  real_name?: string;
  profile?: { display_name?: string; real_name?: string };
}

export const DEFAULT_ADMIN_TTL_MS = 60_000;
const MAX_ENTRIES = 5000;

export class WorkspaceAdmins {
  private readonly cache = new Map<string, { facts: SlackUserFacts; expires: number }>();

  constructor(private readonly ttlMs = DEFAULT_ADMIN_TTL_MS, private readonly now: () => number = Date.now) {}

  async lookup(client: webApi.WebClient, teamId: string, userId: string): Promise<SlackUserFacts> {
    const key = `${teamId}\u0000${userId}`;
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return hit.facts;
    const result = await client.users.info({ user: userId });
    const user = (result.user ?? {}) as UsersInfoUser;
    const facts: SlackUserFacts = { moderator: Boolean(user.is_admin || user.is_owner || user.is_primary_owner) };
    const name = user.profile?.display_name || user.profile?.real_name || user.real_name || user.name;
    if (name) facts.displayName = name;
    this.cache.delete(key);
    this.cache.set(key, { facts, expires: this.now() + this.ttlMs });
    if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    return facts;
  }
}
