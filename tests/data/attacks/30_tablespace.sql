-- expect: refused
CREATE TABLESPACE grab LOCATION '@CANARY_DIR@';
