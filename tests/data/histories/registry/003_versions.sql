CREATE TABLE registry.versions (
    id serial PRIMARY KEY,
    package_id integer NOT NULL REFERENCES registry.packages (id),
    version text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    yanked boolean NOT NULL DEFAULT false,
    UNIQUE (package_id, version)
);
