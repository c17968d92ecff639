-- When a post's title or text last changed (NULL: never since it was drafted): feeds show an
-- edit after publication as an update, and post pages carry it as `article:modified_time`.
-- Comments and tags do not count; `updated_at` moves with every event of the stream.
ALTER TABLE rm_posts ADD COLUMN edited_at TEXT;
