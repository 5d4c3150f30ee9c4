ALTER TABLE threads ADD COLUMN post_count integer NOT NULL DEFAULT 0,
                    ADD COLUMN last_post_at timestamptz;
UPDATE threads t
   SET post_count = (SELECT count(*) FROM posts p WHERE p.thread_id = t.id AND p.deleted_at IS NULL),
       last_post_at = (SELECT max(p.created_at) FROM posts p WHERE p.thread_id = t.id);
