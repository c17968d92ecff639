-- Nothing reads comments by (post_id, post_version): threads are read in path order, which the
-- (post_id, path) index serves. Keeping the index cost every projected comment a third B-tree
-- insert.
DROP INDEX IF EXISTS rm_comments_post_version;
