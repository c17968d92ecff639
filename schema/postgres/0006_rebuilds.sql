-- Blue/green rebuilds of read-model views (`inkwire replay`). One row per view: who is
-- rebuilding it (a lease with an expiry, renewed in every batch's transaction: CockroachDB has no
-- advisory locks), how far it got, and how long the last completed rebuild took (for
-- `--dry-run` estimates and the rebuild-progress dashboard).
CREATE TABLE IF NOT EXISTS projection_rebuilds (
    view_name        TEXT             PRIMARY KEY,
    -- building | switched
    state            TEXT             NOT NULL,
    holder           TEXT             NOT NULL,
    lease_expires_at TIMESTAMPTZ      NOT NULL,
    started_at       TIMESTAMPTZ      NOT NULL,
    updated_at       TIMESTAMPTZ      NOT NULL,
    -- records read into the next generation, and the log's size when the rebuild started
    events_applied   INT8             NOT NULL DEFAULT 0,
    events_total     INT8             NOT NULL DEFAULT 0,
    -- completed rebuilds of this view, and the last one's size and duration
    generation       INT8             NOT NULL DEFAULT 0,
    last_events      INT8             NOT NULL DEFAULT 0,
    last_seconds     DOUBLE PRECISION NOT NULL DEFAULT 0
);
