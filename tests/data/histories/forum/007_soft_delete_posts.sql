ALTER TABLE posts ADD COLUMN deleted_at timestamptz;
DROP INDEX posts_thread;
CREATE INDEX posts_thread_live ON posts (thread_id, created_at) WHERE deleted_at IS NULL;
