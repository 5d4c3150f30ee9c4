CREATE TABLE registry.packages (
    id serial PRIMARY KEY,
    name varchar(100) NOT NULL,
    description text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX packages_name_key ON registry.packages (lower(name));
