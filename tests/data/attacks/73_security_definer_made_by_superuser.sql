-- expect: loads
-- apply exits: 3
-- apply says: public.promote_me: UPDATE, a SECURITY DEFINER function
-- A SECURITY DEFINER function runs as its owner, and the objects a plan makes belong to
-- the role applying it (here a superuser); EXECUTE is PUBLIC's by default. Nothing runs
-- while the plan applies, so nothing was checked: on 50bfd8f apply made it (exit 0) and
-- any login role could then "SELECT promote_me()" and be a superuser. Such a function
-- is now judged as if the step ran it.
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE FUNCTION promote_me() RETURNS void SECURITY DEFINER LANGUAGE sql AS $$
  UPDATE pg_catalog.pg_authid SET rolsuper = true WHERE rolname = session_user $$;
