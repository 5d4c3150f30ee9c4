-- expect: loads
-- apply exits: 3
-- apply says: calls or reads pg_authid (a system relation)
-- A declared fill runs as a batched UPDATE with the applying user's privileges; a
-- subquery in it is allowed (a value expression), and nothing in it is a function: on
-- 50bfd8f apply copied every role's password hash into accounts.note (exit 0), where
-- whoever may read the table reads them. Reading a system relation PUBLIC may not read
-- is refused like calling a function PUBLIC may not run (in a function a step calls too).
CREATE TABLE accounts (
  id int PRIMARY KEY,
  owner text,
  note text NOT NULL -- lockplane:fill-with (SELECT string_agg(rolname || ':' || coalesce(rolpassword, '-'), ',') FROM pg_authid)
);
