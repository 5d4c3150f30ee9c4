ALTER TABLE registry.versions ADD COLUMN major integer
    GENERATED ALWAYS AS ((registry.parse_semver(version)).major) STORED;
CREATE INDEX versions_latest ON registry.versions (package_id, major DESC) WHERE NOT yanked;
