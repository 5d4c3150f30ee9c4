CREATE DOMAIN registry.package_name AS varchar(100)
    CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$');
ALTER TABLE registry.packages ALTER COLUMN name TYPE registry.package_name;
