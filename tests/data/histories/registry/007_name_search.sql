CREATE INDEX packages_name_trgm ON registry.packages USING gin (name gin_trgm_ops);
