CREATE INDEX runs_params ON runs USING gin (params jsonb_path_ops);
