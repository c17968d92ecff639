-- Every saved version of a post's content: one row per `post.drafted` (revision 1) and per
-- `post.edited` that changed its title, slug, body or tags, with the content as it stood after
-- that event. Written only by the projector (part of the posts view, rebuilt with it); a
-- restore is a new edit, so rows are never rewritten.
CREATE TABLE IF NOT EXISTS rm_post_revisions (
    post_id        UUID        NOT NULL,
    revision       INT8        NOT NULL,
    -- the stream version of the event that saved it
    stream_version INT8        NOT NULL,
    title          TEXT        NOT NULL,
    slug           TEXT        NOT NULL,
    body_markdown  TEXT        NOT NULL,
    tags           JSONB       NOT NULL,
    -- who saved it (NULL when the event's actor was not recorded)
    editor_id      UUID,
    edited_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (post_id, revision)
);
