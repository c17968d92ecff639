-- The stream version of the last change to a post's own reactions (0: none yet). Live readers
-- of the post are told its counts when this moves, and only then (`postReactionEvents`).
ALTER TABLE rm_posts ADD COLUMN reactions_version INTEGER NOT NULL DEFAULT 0;
