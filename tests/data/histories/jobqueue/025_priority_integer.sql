ALTER TABLE jobs ALTER COLUMN priority TYPE integer;
