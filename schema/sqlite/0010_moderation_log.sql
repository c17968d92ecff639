-- The moderation log: every act of a moderator or an admin, with who, when and why, projected
-- from the log. Comment acts belong to the posts view and account acts to the users view (a
-- rebuild replaces one view's tables), so they are two tables read as one, newest first.
CREATE TABLE IF NOT EXISTS rm_comment_moderation (
    event_id     BLOB PRIMARY KEY,
    at           TEXT NOT NULL,
    -- who did it (NULL: not recorded)
    moderator_id BLOB,
    -- hide_comment | restore_comment
    action       TEXT NOT NULL,
    post_id      BLOB NOT NULL,
    comment_id   BLOB NOT NULL,
    reason       TEXT
);
CREATE INDEX IF NOT EXISTS rm_comment_moderation_at ON rm_comment_moderation (at, event_id);
CREATE INDEX IF NOT EXISTS rm_comment_moderation_post ON rm_comment_moderation (post_id, at);

CREATE TABLE IF NOT EXISTS rm_account_moderation (
    event_id     BLOB PRIMARY KEY,
    at           TEXT NOT NULL,
    -- who did it (NULL: an operator's `inkwire user` command)
    moderator_id BLOB,
    -- grant_role | revoke_role | disable_user
    action       TEXT NOT NULL,
    user_id      BLOB NOT NULL,
    role         TEXT
);
CREATE INDEX IF NOT EXISTS rm_account_moderation_at ON rm_account_moderation (at, event_id);
