-- expect: loads
-- apply exits: 3
-- apply says: query_to_xml (it runs a query given as text
-- query_to_xml runs the query it is given as text, with the session's privileges, and
-- PUBLIC may run it: no parse of the step sees that the query reads pg_authid. On
-- 0717b2c apply evaluated this default for the existing rows (exit 0) and every row of
-- accounts held every role's password hash.
CREATE TABLE accounts (id int PRIMARY KEY, owner text,
  note text DEFAULT query_to_xml('SELECT rolname, rolpassword FROM pg_authid', true, false, '')::text);
