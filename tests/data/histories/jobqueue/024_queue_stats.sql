CREATE VIEW queue_stats AS
SELECT q.id, q.namespace, q.short_name, j.state, count(*) AS jobs
  FROM queues q JOIN jobs j ON j.queue_id = q.id
 GROUP BY q.id, q.namespace, q.short_name, j.state;
