-- expect: refused
-- Lockplane's own state schema: silently ignored before, now refused.
CREATE SCHEMA lockplane;
CREATE TABLE lockplane.migrations (id int);
