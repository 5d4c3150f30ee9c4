-- expect: refused
CREATE TABLE t (a int);
ALTER DATABASE @TARGET_DB@ SET search_path = attacker, public;
