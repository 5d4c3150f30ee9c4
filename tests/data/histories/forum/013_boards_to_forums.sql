ALTER TABLE boards RENAME TO forums;
ALTER TABLE threads RENAME COLUMN board_id TO forum_id;
