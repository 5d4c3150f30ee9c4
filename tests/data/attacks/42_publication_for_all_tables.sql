-- expect: loads
-- A publication is schema; FOR ALL TABLES needs a superuser, so it runs privileged (it
-- runs nothing).
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE PUBLICATION everything FOR ALL TABLES;
