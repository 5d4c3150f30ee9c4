ALTER TABLE forums ADD COLUMN position integer NOT NULL DEFAULT 0;
CREATE INDEX forums_position ON forums (position, slug);
