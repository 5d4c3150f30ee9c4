CREATE TABLE registry.api_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id bigint NOT NULL REFERENCES registry.accounts (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    scopes text[] NOT NULL DEFAULT '{}',
    valid tstzrange NOT NULL DEFAULT tstzrange(now(), NULL),
    CHECK (cardinality(scopes) <= 10)
);
