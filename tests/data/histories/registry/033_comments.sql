COMMENT ON SCHEMA registry IS 'The package registry';
COMMENT ON TYPE registry.semver IS 'major.minor.patch';
COMMENT ON FUNCTION registry.parse_semver(text) IS 'Parses the numeric part of a version';
COMMENT ON COLUMN registry.versions.major IS 'From the version text';
