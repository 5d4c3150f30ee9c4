-- expect: refused
-- A foreign server into the victim database.
CREATE EXTENSION postgres_fdw;
CREATE SERVER victim FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname '@VICTIM_DB@', host '127.0.0.1');
CREATE USER MAPPING FOR CURRENT_USER SERVER victim OPTIONS (user 'postgres');
IMPORT FOREIGN SCHEMA public FROM SERVER victim INTO public;
