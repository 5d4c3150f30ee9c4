ALTER TABLE threads ADD COLUMN pinned boolean NOT NULL DEFAULT false,
                    ADD COLUMN locked boolean NOT NULL DEFAULT false;
CREATE INDEX threads_forum_order ON threads (forum_id, pinned DESC, last_post_at DESC NULLS LAST);
DROP INDEX threads_board;
