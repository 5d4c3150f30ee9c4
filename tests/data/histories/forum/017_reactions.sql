CREATE TYPE reaction AS ENUM ('like', 'laugh');
CREATE TABLE reactions (
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind reaction NOT NULL,
    PRIMARY KEY (post_id, user_id, kind)
);
