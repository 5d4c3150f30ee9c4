COMMENT ON DOMAIN slug IS 'lower-case identifier used in URLs';
COMMENT ON VIEW run_overview IS 'One line per run for the dashboard';
COMMENT ON COLUMN runs.params IS 'Input parameters of the run';
