ALTER TABLE registry.packages DROP CONSTRAINT packages_description_length;
ALTER TABLE registry.accounts ALTER COLUMN email TYPE varchar(320);
