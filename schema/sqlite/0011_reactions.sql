-- Readers' reactions to posts and comments, projected from `reaction.added` / `reaction.removed`:
-- one row per reader, target and kind while it stands. `target_id` is the comment's id, or the
-- post's own for a reaction to the post. Counts are read by grouping; `viewerReacted` by key.
CREATE TABLE IF NOT EXISTS rm_reactions (
    target_id  BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    -- like | heart | laugh | tada | wow
    kind       TEXT NOT NULL,
    post_id    BLOB NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (target_id, user_id, kind)
);
CREATE INDEX IF NOT EXISTS rm_reactions_post ON rm_reactions (post_id);
