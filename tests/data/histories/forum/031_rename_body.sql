ALTER TABLE posts RENAME COLUMN body TO content;
ALTER TABLE post_revisions RENAME COLUMN body TO content;
CREATE OR REPLACE FUNCTION posts_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := setweight(to_tsvector('english', coalesce(NEW.content, '')), 'A');
    RETURN NEW;
END
$$;
