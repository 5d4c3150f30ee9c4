CREATE INDEX jobs_created_brin ON jobs USING brin (created_at);
