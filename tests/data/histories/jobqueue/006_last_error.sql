ALTER TABLE jobs ADD COLUMN last_error text;
