-- expect: refused
-- Read a server file into a table.
CREATE TABLE leak (line text);
COPY leak FROM '@CANARY_FILE@';
