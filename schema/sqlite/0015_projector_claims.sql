-- Which projector of a group applies which partition (SQLite flavour of schema/postgres; ADR 007).
CREATE TABLE IF NOT EXISTS projector_members (
    consumer_group TEXT        NOT NULL,
    member         TEXT        NOT NULL,
    expires_at     TEXT        NOT NULL,
    PRIMARY KEY (consumer_group, member)
);

CREATE TABLE IF NOT EXISTS projector_claims (
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INTEGER     NOT NULL,
    member         TEXT        NOT NULL,
    expires_at     TEXT        NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);
