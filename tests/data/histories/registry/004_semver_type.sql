CREATE TYPE registry.semver AS (major integer, minor integer, patch integer);
CREATE FUNCTION registry.parse_semver(v text) RETURNS registry.semver
    LANGUAGE sql IMMUTABLE STRICT
    RETURN ROW(split_part(v, '.', 1)::integer, split_part(v, '.', 2)::integer,
               split_part(split_part(v, '.', 3), '-', 1)::integer)::registry.semver;
