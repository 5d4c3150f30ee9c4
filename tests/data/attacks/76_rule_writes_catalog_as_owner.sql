-- expect: loads
-- apply exits: 3
-- apply says: rule signups_promote on signups: reads pg_catalog.pg_authid, which PUBLIC may not read
-- A rule's actions use relations with the privileges of its table's owner: the role
-- applying the plan (here a superuser). On 7dd291c apply made this rule (exit 0) and any
-- login role could "INSERT INTO signups VALUES (current_user)" and be a superuser. A
-- rule may not use a system relation in a way PUBLIC may not (nor may a view).
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE TABLE signups (name text);
GRANT INSERT ON signups TO PUBLIC;
CREATE RULE signups_promote AS ON INSERT TO signups DO ALSO
  UPDATE pg_catalog.pg_authid SET rolsuper = true WHERE rolname = NEW.name;
