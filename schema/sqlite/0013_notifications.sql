-- Reply notifications, projected from the log. A signed-in author is told of a reply to their
-- comment (`reply`) and of a comment on their post (`comment`), never of their own, and once
-- per comment (a reply on their own post is a `reply`). A hidden or deleted comment withdraws
-- its notification; restoring it brings it back. Part of the posts view (rebuilt with it).
CREATE TABLE IF NOT EXISTS rm_notifications (
    -- who is told
    user_id     BLOB        NOT NULL,
    -- the comment that tells them; its text, author and post are read from rm_comments
    comment_id  BLOB        NOT NULL,
    post_id     BLOB        NOT NULL,
    -- reply | comment
    kind        TEXT        NOT NULL,
    -- when the comment was made: the list's order, with comment_id, and what read marks compare
    created_at  TEXT NOT NULL,
    -- active | withdrawn
    status      TEXT        NOT NULL,
    -- per user, the order of changes (1, 2, …): the live subscription's cursor
    changed_seq INTEGER        NOT NULL,
    -- added | withdrawn | restored
    last_change TEXT        NOT NULL,
    PRIMARY KEY (user_id, comment_id)
);
CREATE INDEX IF NOT EXISTS rm_notifications_changes ON rm_notifications (user_id, changed_seq);
CREATE INDEX IF NOT EXISTS rm_notifications_order ON rm_notifications (user_id, created_at, comment_id);
CREATE INDEX IF NOT EXISTS rm_notifications_comment ON rm_notifications (comment_id);

-- How far each user has read their notifications (`notifications.read`): everything up to
-- (up_to_at, up_to_comment) in list order is read. `seq` counts the marks that moved it, for the
-- live subscription. Part of the users view, like the event.
CREATE TABLE IF NOT EXISTS rm_notification_reads (
    user_id       BLOB        PRIMARY KEY,
    up_to_at      TEXT NOT NULL,
    up_to_comment BLOB        NOT NULL,
    seq           INTEGER        NOT NULL
);
