-- CockroachDB only: spread the time-ordered outbox key over ranges to avoid a write hot spot.
ALTER TABLE outbox ALTER PRIMARY KEY USING COLUMNS (event_id) USING HASH;
