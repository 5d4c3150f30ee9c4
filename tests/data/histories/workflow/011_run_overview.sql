CREATE VIEW run_overview AS
SELECT r.id, w.name AS workflow, r.status, run_progress(r) AS progress, r.duration
  FROM runs r JOIN workflows w ON w.id = r.workflow_id;
