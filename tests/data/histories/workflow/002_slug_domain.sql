CREATE DOMAIN slug AS text CHECK (VALUE ~ '^[a-z0-9][a-z0-9-]*$');
