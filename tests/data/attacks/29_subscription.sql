-- expect: refused
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
CREATE SUBSCRIPTION grab CONNECTION 'dbname=@TARGET_DB@ host=127.0.0.1 user=postgres' PUBLICATION everything;
