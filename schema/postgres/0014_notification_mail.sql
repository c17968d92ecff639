-- Write model: where a user's notifications are emailed. Addresses are personal data and are
-- kept here, beside the credentials, never in an event: forgetting one is a DELETE. Written and
-- read by the command service only (its mail settings and its mailer).
CREATE TABLE IF NOT EXISTS notification_mail (
    user_id              UUID        PRIMARY KEY,
    email                TEXT        NOT NULL,
    -- notifications are emailed (once verified)
    enabled              BOOL        NOT NULL,
    -- when the confirmation link was followed; NULL: nothing but that link is sent
    verified_at          TIMESTAMPTZ,
    -- a confirmation link is still to be sent
    confirm_pending      BOOL        NOT NULL,
    -- when email was turned on: notifications of comments made before are never emailed
    since                TIMESTAMPTZ NOT NULL,
    -- the user's last notification change (rm_notifications.changed_seq) emailed
    mailed_seq           INT8        NOT NULL,
    -- the last email of any kind to this user: the next waits for the window to pass
    last_mailed_at       TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ NOT NULL
);
