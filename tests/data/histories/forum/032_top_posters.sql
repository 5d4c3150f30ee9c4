CREATE MATERIALIZED VIEW top_posters AS
SELECT u.id, u.username, count(p.id) AS posts
  FROM users u JOIN posts p ON p.author_id = u.id AND p.deleted_at IS NULL
 GROUP BY u.id, u.username;
CREATE UNIQUE INDEX top_posters_id ON top_posters (id);
