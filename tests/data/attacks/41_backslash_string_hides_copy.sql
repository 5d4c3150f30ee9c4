-- expect: refused
-- With standard_conforming_strings off, the server reads 'x\'' as the string x' and then
-- runs the COPY; PostgreSQL's parser (as the screen reads, with it on) sees one COMMENT
-- whose string holds the COPY. The SET is refused; the sandbox's sessions start with it on,
-- and each statement goes to the server alone, where a second command is refused.
SET standard_conforming_strings = off;
CREATE TABLE t (a int);
COMMENT ON TABLE t IS 'x\''; COPY (SELECT 1) TO PROGRAM $$touch @CANARY_DIR@/scs$$; -- ';
