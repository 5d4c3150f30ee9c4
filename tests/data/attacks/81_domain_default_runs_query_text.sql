-- expect: loads
-- apply exits: 3
-- apply says: query_to_xml (it runs a query given as text
-- A domain's DEFAULT is stored by CREATE DOMAIN and evaluated, as the applying user, for
-- every existing row when a later step adds a column of that type: that ADD COLUMN names
-- no function. On a7ce27a (which read only the parts of a statement that run) apply
-- copied every role's password hash into accounts.x (exit 0).
CREATE DOMAIN xnotes AS text
  DEFAULT query_to_xml('SELECT rolname, rolpassword FROM pg_authid', true, false, '')::text;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, x xnotes);
