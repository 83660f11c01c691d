/**
 * The PostgreSQL schema: the same tables, columns and constraints as bot/sqlite.migrations.ts, in PostgreSQL's types
 * (times in epoch milliseconds as BIGINT, JSON kept as TEXT as SQLite keeps it, so both stores read and write the same
 * shapes). Each migration runs once, in one transaction with the row that records it; bot/postgres.store.ts holds an
 * advisory lock while it migrates, so processes that start at once apply each migration exactly once. Never edit a
 * released migration: add one, here and in SQLite's list under the same number.
 */
import type { Migration } from './sqlite.migrations.js';

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE quota_limits (
        space_id    TEXT    NOT NULL,
        target_kind TEXT    NOT NULL CHECK (target_kind IN ('default', 'role', 'user')),
        target_id   TEXT    NOT NULL DEFAULT '',
        kind        TEXT    NOT NULL CHECK (kind IN ('imagine', 'caption')),
        daily_limit INTEGER NOT NULL CHECK (daily_limit >= 0),
        updated_by  TEXT    NOT NULL,
        updated_at  BIGINT  NOT NULL,
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
        created_at    BIGINT  NOT NULL,
        updated_at    BIGINT  NOT NULL
      );
      CREATE INDEX jobs_by_state ON jobs (state);

      CREATE TABLE usage_ledger (
        id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id     TEXT    NOT NULL UNIQUE REFERENCES jobs (id),
        space_id   TEXT    NOT NULL,
        user_id    TEXT    NOT NULL,
        kind       TEXT    NOT NULL CHECK (kind IN ('imagine', 'caption')),
        day        TEXT    NOT NULL,
        units      INTEGER NOT NULL CHECK (units > 0),
        state      TEXT    NOT NULL CHECK (state IN ('reserved', 'charged', 'refunded')),
        note       TEXT,
        created_at BIGINT  NOT NULL,
        settled_at BIGINT
      );
      CREATE INDEX usage_by_user_day ON usage_ledger (space_id, user_id, day, kind);

      CREATE TABLE requests (
        id          TEXT   PRIMARY KEY,
        space_id    TEXT   NOT NULL,
        user_id     TEXT   NOT NULL,
        command     TEXT   NOT NULL,
        received_at BIGINT NOT NULL
      );
      CREATE INDEX requests_by_time ON requests (received_at);

      CREATE TABLE blocklist (
        space_id TEXT   NOT NULL,
        pattern  TEXT   NOT NULL,
        added_by TEXT   NOT NULL,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (space_id, pattern)
      );

      CREATE TABLE audit_log (
        id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        space_id TEXT   NOT NULL,
        actor_id TEXT   NOT NULL,
        action   TEXT   NOT NULL,
        target   TEXT   NOT NULL,
        before   TEXT,
        after    TEXT,
        at       BIGINT NOT NULL
      );
      CREATE INDEX audit_by_space ON audit_log (space_id, id);

      CREATE TABLE settings (
        space_id   TEXT   NOT NULL,
        key        TEXT   NOT NULL,
        value      TEXT   NOT NULL,
        updated_by TEXT   NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (space_id, key)
      );
    `,
  },
  {
    version: 2,
    name: 'jobs remember when their reply went out',
    sql: `
      ALTER TABLE jobs ADD COLUMN answered_at BIGINT;
      UPDATE jobs SET answered_at = updated_at WHERE state NOT IN ('queued', 'running');
      CREATE INDEX jobs_unanswered ON jobs (updated_at) WHERE answered_at IS NULL AND state NOT IN ('queued', 'running');
    `,
  },
];
