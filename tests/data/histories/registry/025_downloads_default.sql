CREATE TABLE registry.downloads_default PARTITION OF registry.downloads DEFAULT;
