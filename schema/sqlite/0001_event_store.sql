-- Write model: the event store, its outbox, slug reservations and leases.
-- SQLite flavour of schema/postgres: same tables, SQLite types (UUIDs as 16-byte BLOBs, times as RFC 3339 TEXT).

-- Every event ever accepted. The primary key on (stream_id, version) is the optimistic-concurrency
-- check: two writers appending the same version to one stream cannot both commit.
CREATE TABLE IF NOT EXISTS events (
    stream_id     BLOB        NOT NULL,
    version       INTEGER        NOT NULL,
    event_id      BLOB        NOT NULL UNIQUE,
    event_type    TEXT        NOT NULL,
    event_version INTEGER        NOT NULL,
    data          TEXT       NOT NULL,
    -- actor, correlation_id, causation_id, traceparent
    meta          TEXT       NOT NULL,
    occurred_at   TEXT NOT NULL,
    PRIMARY KEY (stream_id, version)
);

-- Events accepted but not yet acknowledged by the log, written in the same transaction as the
-- events. event_id is UUIDv7 and strictly increasing within a stream, so ordering by it keeps
CREATE TABLE IF NOT EXISTS outbox (
    event_id   BLOB        PRIMARY KEY,
    stream_id  BLOB        NOT NULL,
    version    INTEGER        NOT NULL,
    payload    BLOB       NOT NULL,
    created_at TEXT NOT NULL
);

-- Slugs are unique across posts: reserved in the same transaction as the event that claims them.
CREATE TABLE IF NOT EXISTS post_slugs (
    slug    TEXT PRIMARY KEY,
    post_id BLOB NOT NULL
);

-- Leader leases (the outbox relay): a row per role, taken over only once expired.
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TEXT NOT NULL
);

-- The embedded log, used when no Kafka is configured. One row per message, per partition offset.
CREATE TABLE IF NOT EXISTS log_messages (
    topic       TEXT        NOT NULL,
    partition   INTEGER        NOT NULL,
    log_offset  INTEGER        NOT NULL,
    msg_key     BLOB       NOT NULL,
    payload     BLOB       NOT NULL,
    appended_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, log_offset)
);
