-- expect: refused
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
DELETE FROM accounts;
INSERT INTO accounts VALUES (1, 'attacker');
