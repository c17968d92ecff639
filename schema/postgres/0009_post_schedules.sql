-- Scheduled publishing. The write side keeps each scheduled draft's time here, written in the
-- same transaction as its `post.scheduled` (and removed with `post.unscheduled`,
-- `post.published` or `post.deleted`), so every command-service instance's scheduler finds
-- due posts without replaying streams, across restarts. Publishing goes through the post's
-- stream and its version check, so two instances carrying out one schedule publish it once.
CREATE TABLE IF NOT EXISTS post_schedules (
    post_id    UUID PRIMARY KEY,
    publish_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS post_schedules_due ON post_schedules (publish_at);

-- Read model: when a draft is to be published (NULL: not scheduled).
ALTER TABLE rm_posts ADD COLUMN IF NOT EXISTS scheduled_at TIMESTAMPTZ;
