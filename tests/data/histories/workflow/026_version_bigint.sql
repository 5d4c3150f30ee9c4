ALTER TABLE workflows ALTER COLUMN version TYPE bigint;
