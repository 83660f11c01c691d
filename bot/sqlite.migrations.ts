/**
 * The numbered schema migrations. Each runs once, in its own transaction together with the row in `schema_version`
 * that records it, so a failed migration leaves the database as it was. Never edit a released migration: add one.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      -- Daily limits: one row per space and target (the space default, a role, a user) and kind.
      CREATE TABLE quota_limits (
        space_id    TEXT    NOT NULL,
        target_kind TEXT    NOT NULL CHECK (target_kind IN ('default', 'role', 'user')),
        target_id   TEXT    NOT NULL DEFAULT '',
        kind        TEXT    NOT NULL CHECK (kind IN ('imagine', 'caption')),
        daily_limit INTEGER NOT NULL CHECK (daily_limit >= 0),
        updated_by  TEXT    NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (space_id, target_kind, target_id, kind)
      );

      CREATE TABLE jobs (
        id            TEXT    PRIMARY KEY,
        request_id    TEXT    NOT NULL UNIQUE,
        platform      TEXT    NOT NULL,
        requester_id  TEXT    NOT NULL,
        space_id      TEXT    NOT NULL,
        channel_id    TEXT    NOT NULL,
        kind          TEXT    NOT NULL CHECK (kind IN ('imagine', 'caption', 'speak')),
        settings      TEXT    NOT NULL,
        state         TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        error_code    TEXT,
        message_ids   TEXT    NOT NULL DEFAULT '[]',
        parent_job_id TEXT,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      CREATE INDEX jobs_by_state ON jobs (state);

      -- The usage ledger: one reservation per job, settled exactly once (reserved -> charged | refunded).
      CREATE TABLE usage_ledger (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id     TEXT    NOT NULL UNIQUE REFERENCES jobs (id),
        space_id   TEXT    NOT NULL,
        user_id    TEXT    NOT NULL,
        kind       TEXT    NOT NULL CHECK (kind IN ('imagine', 'caption')),
        day        TEXT    NOT NULL,
        units      INTEGER NOT NULL CHECK (units > 0),
        state      TEXT    NOT NULL CHECK (state IN ('reserved', 'charged', 'refunded')),
        note       TEXT,
        created_at INTEGER NOT NULL,
        settled_at INTEGER
      );
      CREATE INDEX usage_by_user_day ON usage_ledger (space_id, user_id, day, kind);

      -- Request ids already handled: the idempotency key of BotRequest.
      CREATE TABLE requests (
        id          TEXT    PRIMARY KEY,
        space_id    TEXT    NOT NULL,
        user_id     TEXT    NOT NULL,
        command     TEXT    NOT NULL,
        received_at INTEGER NOT NULL
      );

      CREATE TABLE blocklist (
        space_id TEXT    NOT NULL,
        pattern  TEXT    NOT NULL,
        added_by TEXT    NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (space_id, pattern)
      );

      CREATE TABLE audit_log (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        space_id TEXT    NOT NULL,
        actor_id TEXT    NOT NULL,
        action   TEXT    NOT NULL,
        target   TEXT    NOT NULL,
        before   TEXT,
        after    TEXT,
        at       INTEGER NOT NULL
      );
      CREATE INDEX audit_by_space ON audit_log (space_id, id);

      -- Per-space settings, e.g. key 'autocaption:<channelId>' (Slack channels whose images are captioned).
      CREATE TABLE settings (
        space_id   TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        value      TEXT    NOT NULL,
        updated_by TEXT    NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (space_id, key)
      );
    `,
  },
  {
    version: 2,
    name: 'jobs remember when their reply went out',
    sql: `
      -- When the job's reply was handed to the platform. A job settled without it had a front that stopped before its
      -- reply went out: a cluster front answers it from the result the queue keeps. Jobs settled before this
      -- migration were answered (or never will be).
      ALTER TABLE jobs ADD COLUMN answered_at INTEGER;
      UPDATE jobs SET answered_at = updated_at WHERE state NOT IN ('queued', 'running');
      CREATE INDEX jobs_unanswered ON jobs (updated_at) WHERE answered_at IS NULL AND state NOT IN ('queued', 'running');
    `,
  },
];
