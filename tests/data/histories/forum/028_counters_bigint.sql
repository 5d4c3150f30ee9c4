-- thread_list reads post_count: PostgreSQL will not retype a column a view uses.
DROP VIEW thread_list;
ALTER TABLE threads ALTER COLUMN post_count TYPE bigint;
CREATE VIEW thread_list AS
SELECT t.id, t.title, f.slug AS forum, u.username AS author, t.post_count, t.last_post_at,
       t.pinned
  FROM threads t
  JOIN forums f ON f.id = t.forum_id
  JOIN users u ON u.id = t.author_id;
