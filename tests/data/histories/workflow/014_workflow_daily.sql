CREATE MATERIALIZED VIEW workflow_daily AS
SELECT w.name, date_trunc('day', r.started_at) AS day, count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'failed') AS failures
  FROM runs r JOIN workflows w ON w.id = r.workflow_id
 GROUP BY w.name, date_trunc('day', r.started_at);
CREATE UNIQUE INDEX workflow_daily_key ON workflow_daily (name, day);
