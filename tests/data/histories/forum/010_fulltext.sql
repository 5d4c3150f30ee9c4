ALTER TABLE posts ADD COLUMN search tsvector;
CREATE INDEX posts_search ON posts USING gin (search);
CREATE FUNCTION posts_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := to_tsvector('english', NEW.body);
    RETURN NEW;
END
$$;
CREATE TRIGGER posts_search BEFORE INSERT OR UPDATE OF body ON posts
    FOR EACH ROW EXECUTE FUNCTION posts_search_update();
UPDATE posts SET search = to_tsvector('english', body);
