CREATE TABLE post_revisions (
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    revision integer NOT NULL,
    body text NOT NULL,
    edited_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, revision)
);
