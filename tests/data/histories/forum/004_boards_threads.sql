CREATE TABLE boards (
    id serial PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    title text NOT NULL
);
CREATE TABLE threads (
    id bigserial PRIMARY KEY,
    board_id integer NOT NULL REFERENCES boards (id),
    author_id bigint NOT NULL REFERENCES users (id),
    title text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_board ON threads (board_id);
