ALTER TABLE jobs SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01);
