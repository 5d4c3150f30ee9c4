CREATE TABLE users (
    id bigserial PRIMARY KEY,
    username citext NOT NULL UNIQUE,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
