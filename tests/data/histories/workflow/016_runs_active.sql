CREATE INDEX runs_active ON runs (workflow_id) WHERE status IN ('pending', 'running');
