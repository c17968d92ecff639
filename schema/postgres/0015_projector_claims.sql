-- Which projector of a group applies which partition (ADR 007). Projectors share a group's
-- partitions through these rows, in the same database as their offsets, rather than through
-- the broker's group coordinator: a member heartbeats into projector_members, takes its share
-- of the partitions that nobody live holds, and gives back what exceeds its share. A member
-- that stops heartbeating loses its rows when they expire.
CREATE TABLE IF NOT EXISTS projector_members (
    consumer_group TEXT        NOT NULL,
    member         TEXT        NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer_group, member)
);

CREATE TABLE IF NOT EXISTS projector_claims (
    consumer_group TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INT8        NOT NULL,
    member         TEXT        NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);
