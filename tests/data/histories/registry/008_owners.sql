CREATE TABLE registry.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login text NOT NULL UNIQUE,
    email text
);
CREATE TABLE registry.package_owners (
    package_id integer NOT NULL REFERENCES registry.packages (id) ON DELETE CASCADE,
    account_id bigint NOT NULL REFERENCES registry.accounts (id),
    PRIMARY KEY (package_id, account_id)
);
