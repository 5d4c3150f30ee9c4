-- expect: loads
-- apply exits: 3
-- apply says: table_to_xml (it runs a query given as text
-- table_to_xml reads the relation its argument names (a regclass value: no relation
-- appears in the statement) with the session's privileges. ADD COLUMN evaluates this
-- stable default once, as the applying user, for every existing row.
CREATE TABLE accounts (id int PRIMARY KEY, owner text,
  note text DEFAULT table_to_xml('pg_catalog.pg_authid', true, false, '')::text);
