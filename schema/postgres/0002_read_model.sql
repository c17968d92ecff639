-- Read model: what queries see, written only by the projection service.

CREATE TABLE IF NOT EXISTS rm_posts (
    id                       UUID        PRIMARY KEY,
    author_id                UUID        NOT NULL,
    title                    TEXT        NOT NULL,
    slug                     TEXT        NOT NULL,
    body_markdown            TEXT        NOT NULL,
    tags                     JSONB       NOT NULL,
    -- draft | published | deleted
    status                   TEXT        NOT NULL,
    allow_anonymous_comments BOOL        NOT NULL,
    -- visible (not deleted, not hidden) comments
    comment_count            INT8        NOT NULL DEFAULT 0,
    -- the last stream version applied: redelivered or duplicated events at or below it are ignored
    version                  INT8        NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL,
    published_at             TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS rm_posts_slug ON rm_posts (slug);
CREATE INDEX IF NOT EXISTS rm_posts_status_published ON rm_posts (status, published_at);

CREATE TABLE IF NOT EXISTS rm_post_tags (
    tag     TEXT NOT NULL,
    post_id UUID NOT NULL,
    PRIMARY KEY (tag, post_id)
);

CREATE TABLE IF NOT EXISTS rm_comments (
    id            UUID        PRIMARY KEY,
    post_id       UUID        NOT NULL,
    parent_id     UUID,
    -- 0 for a top-level comment
    depth         INT8        NOT NULL,
    -- the ancestors' and own stream versions, zero-padded and '/'-joined: sorting by it gives
    -- the thread in display order (depth first, siblings in the order they were accepted)
    path          TEXT        NOT NULL,
    author_id     UUID,
    author_name   TEXT        NOT NULL,
    body          TEXT        NOT NULL,
    -- visible | hidden | deleted
    status        TEXT        NOT NULL,
    hidden_reason TEXT,
    reply_count   INT8        NOT NULL DEFAULT 0,
    -- the stream version of comment.added: the order in which comments were accepted
    post_version  INT8        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_comments_post_path ON rm_comments (post_id, path);
CREATE INDEX IF NOT EXISTS rm_comments_post_version ON rm_comments (post_id, post_version);

-- Where each consumer group is in each partition, written in the same transaction as the rows
-- above: the database, not Kafka, is the truth about what has been applied.
CREATE TABLE IF NOT EXISTS projection_offsets (
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INT8        NOT NULL,
    applied_offset INT8        NOT NULL,
    last_event_at  TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Messages that could not be decoded or applied, kept instead of dropped.
CREATE TABLE IF NOT EXISTS projection_dead_letters (
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INT8        NOT NULL,
    log_offset     INT8        NOT NULL,
    payload        BYTEA       NOT NULL,
    error          TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition, log_offset)
);
