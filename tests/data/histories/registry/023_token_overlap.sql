CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE registry.api_tokens ADD CONSTRAINT api_tokens_one_admin
    EXCLUDE USING gist (account_id WITH =, valid WITH &&) WHERE ('admin' = ANY (scopes));
