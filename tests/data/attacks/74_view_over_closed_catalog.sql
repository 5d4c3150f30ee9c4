-- expect: loads
-- apply exits: 3
-- apply says: view public.role_directory: reads pg_catalog.pg_authid, which PUBLIC may not read
-- A view reads its relations with its owner's privileges: made by a superuser's apply, a
-- view over pg_authid granted to PUBLIC handed every role's password hash to any login
-- role (on 50bfd8f apply exit 0). A view may not read a system relation that PUBLIC
-- may not read.
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE VIEW role_directory AS SELECT rolname, rolpassword FROM pg_authid;
GRANT SELECT ON role_directory TO PUBLIC;
