CREATE TYPE registry.dep_kind AS ENUM ('runtime', 'dev');
CREATE TABLE registry.dependencies (
    version_id integer NOT NULL REFERENCES registry.versions (id) ON DELETE CASCADE,
    depends_on integer NOT NULL REFERENCES registry.packages (id),
    requirement text NOT NULL DEFAULT '*',
    kind registry.dep_kind NOT NULL DEFAULT 'runtime',
    PRIMARY KEY (version_id, depends_on, kind)
);
