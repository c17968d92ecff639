-- Users. The write model keeps credentials beside the event store: the argon2id hash (never in
-- an event, see docs/adr/005-credentials-outside-events.md), the unique username, and the current
-- roles and disabled flag, all written in the same transaction as the user's events so that
-- authorization decisions read them without replaying streams.
CREATE TABLE IF NOT EXISTS user_credentials (
    user_id       BLOB         PRIMARY KEY,
    username      TEXT        NOT NULL UNIQUE,
    password_hash TEXT        NOT NULL,
    display_name  TEXT        NOT NULL,
    roles         TEXT        NOT NULL,
    disabled      INTEGER     NOT NULL DEFAULT 0,
    updated_at    TEXT        NOT NULL
);

-- Read model: users as queries show them (no credentials), written only by the projector.
CREATE TABLE IF NOT EXISTS rm_users (
    id           BLOB         PRIMARY KEY,
    username     TEXT        NOT NULL,
    display_name TEXT        NOT NULL,
    roles        TEXT        NOT NULL,
    disabled     INTEGER     NOT NULL DEFAULT 0,
    version      INTEGER     NOT NULL,
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS rm_users_username ON rm_users (username);
