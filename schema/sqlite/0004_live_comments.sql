-- What the gateway needs to push live comment events and to resume a subscriber from a cursor:
-- the stream version of the last change to each comment and what that change was, and the
-- rendered (sanitised) HTML of posts and comments, rendered once by the projector instead of on
-- every read.
ALTER TABLE rm_comments ADD COLUMN changed_version INT8 NOT NULL DEFAULT 0;
ALTER TABLE rm_comments ADD COLUMN last_change TEXT NOT NULL DEFAULT 'added';
ALTER TABLE rm_comments ADD COLUMN body_html TEXT;
ALTER TABLE rm_posts ADD COLUMN body_html TEXT;
UPDATE rm_comments SET changed_version = post_version;
-- "Comments of this post changed after version N", in change order: the live feed's and the
-- resume cursor's query.
CREATE INDEX IF NOT EXISTS rm_comments_post_changed ON rm_comments (post_id, changed_version);
