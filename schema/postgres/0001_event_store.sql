-- Write model: the event store, its outbox, slug reservations and leases.
-- Runs on PostgreSQL and CockroachDB alike: UUID keys, INT8 integers, no SERIAL, no advisory locks.

-- Every event ever accepted. The primary key on (stream_id, version) is the optimistic-concurrency
-- check: two writers appending the same version to one stream cannot both commit.
CREATE TABLE IF NOT EXISTS events (
    stream_id     UUID        NOT NULL,
    version       INT8        NOT NULL,
    event_id      UUID        NOT NULL UNIQUE,
    event_type    TEXT        NOT NULL,
    event_version INT8        NOT NULL,
    data          JSONB       NOT NULL,
    -- actor, correlation_id, causation_id, traceparent
    meta          JSONB       NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (stream_id, version)
);

-- Events accepted but not yet acknowledged by the log, written in the same transaction as the
-- events. event_id is UUIDv7 and strictly increasing within a stream, so ordering by it keeps
-- each post's order. On CockroachDB see schema/cockroach/ for a hash-sharded variant.
CREATE TABLE IF NOT EXISTS outbox (
    event_id   UUID        PRIMARY KEY,
    stream_id  UUID        NOT NULL,
    version    INT8        NOT NULL,
    payload    BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Slugs are unique across posts: reserved in the same transaction as the event that claims them.
CREATE TABLE IF NOT EXISTS post_slugs (
    slug    TEXT PRIMARY KEY,
    post_id UUID NOT NULL
);

-- Leader leases (the outbox relay): a row per role, taken over only once expired.
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- The embedded log, used when no Kafka is configured. One row per message, per partition offset.
CREATE TABLE IF NOT EXISTS log_messages (
    topic       TEXT        NOT NULL,
    partition   INT8        NOT NULL,
    log_offset  INT8        NOT NULL,
    msg_key     BYTEA       NOT NULL,
    payload     BYTEA       NOT NULL,
    appended_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, partition, log_offset)
);
