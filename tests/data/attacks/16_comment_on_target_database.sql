-- expect: refused
CREATE TABLE t (a int);
COMMENT ON DATABASE @TARGET_DB@ IS 'owned';
