CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    thread_id bigint NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    author_id bigint REFERENCES users (id) ON DELETE SET NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_thread ON posts (thread_id, created_at);
