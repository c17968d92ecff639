-- Write model: where a user's notifications are emailed (SQLite flavour of schema/postgres).
-- Addresses are personal data, kept beside the credentials and never in an event.
CREATE TABLE IF NOT EXISTS notification_mail (
    user_id              BLOB        PRIMARY KEY,
    email                TEXT        NOT NULL,
    -- notifications are emailed (once verified)
    enabled              INTEGER     NOT NULL,
    -- when the confirmation link was followed; NULL: nothing but that link is sent
    verified_at          TEXT,
    -- a confirmation link is still to be sent
    confirm_pending      INTEGER     NOT NULL,
    -- when email was turned on: notifications of comments made before are never emailed
    since                TEXT        NOT NULL,
    -- the user's last notification change (rm_notifications.changed_seq) emailed
    mailed_seq           INTEGER     NOT NULL,
    -- the last email of any kind to this user: the next waits for the window to pass
    last_mailed_at       TEXT,
    updated_at           TEXT        NOT NULL
);
