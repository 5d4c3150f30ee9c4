CREATE VIEW post_feed AS
SELECT p.id, p.thread_id, p.content, p.created_at
  FROM posts p
 WHERE p.deleted_at IS NULL;
