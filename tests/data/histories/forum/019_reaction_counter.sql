ALTER TABLE posts ADD COLUMN reaction_count integer NOT NULL DEFAULT 0;
UPDATE posts p SET reaction_count = (SELECT count(*) FROM reactions r WHERE r.post_id = p.id);
CREATE FUNCTION reactions_counter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE posts SET reaction_count = reaction_count + 1 WHERE id = NEW.post_id;
    ELSE
        UPDATE posts SET reaction_count = reaction_count - 1 WHERE id = OLD.post_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER reactions_count AFTER INSERT OR DELETE ON reactions
    FOR EACH ROW EXECUTE FUNCTION reactions_counter();
