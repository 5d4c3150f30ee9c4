-- expect: loads
-- apply exits: 3
-- apply says: ts_stat (it runs a query given as text
-- ts_stat runs the query it is given as text (PUBLIC may run it): a materialized view
-- made with data runs it as the applying user, and keeps what it read (here every
-- role's password hash, word by word) for whoever may read the view.
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE MATERIALIZED VIEW words AS
  SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', coalesce(rolpassword, rolname)) FROM pg_authid');
GRANT SELECT ON words TO PUBLIC;
