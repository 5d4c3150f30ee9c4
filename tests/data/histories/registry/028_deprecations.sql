ALTER TABLE registry.packages ADD COLUMN deprecated_by integer
    REFERENCES registry.packages (id) ON DELETE SET NULL;
ALTER TABLE registry.packages ADD CONSTRAINT packages_not_self_deprecated
    CHECK (deprecated_by <> id);
