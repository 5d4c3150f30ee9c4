-- expect: loads
-- apply exits: 0
-- Terminal escape sequences in names and comments: printed, they would rewrite the
-- operator's screen (clear it, retitle the window, hide a line).
CREATE TABLE accounts (id int PRIMARY KEY, owner text);
COMMENT ON TABLE accounts IS E'fine\x1b[2J\x1b]0;owned\x07\x1b[1A\rALL CLEAR';
CREATE TABLE U&"esc\001b[8mhidden" (a int);
