-- expect: refused
CREATE TABLE t (a int);
CREATE ROLE lockplane_attack_owner SUPERUSER LOGIN PASSWORD 'attack';
