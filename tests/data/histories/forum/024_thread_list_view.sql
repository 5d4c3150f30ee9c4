CREATE VIEW thread_list AS
SELECT t.id, t.title, f.slug AS forum, u.username AS author, t.post_count, t.last_post_at,
       t.pinned
  FROM threads t
  JOIN forums f ON f.id = t.forum_id
  JOIN users u ON u.id = t.author_id;
