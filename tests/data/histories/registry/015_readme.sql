ALTER TABLE registry.versions ADD COLUMN readme text, ADD COLUMN license text;
