CREATE FUNCTION posts_counter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE threads SET post_count = post_count + 1,
                           last_post_at = greatest(last_post_at, NEW.created_at)
         WHERE id = NEW.thread_id;
        RETURN NEW;
    ELSE
        UPDATE threads SET post_count = post_count - 1 WHERE id = OLD.thread_id;
        RETURN OLD;
    END IF;
END
$$;
CREATE TRIGGER posts_count AFTER INSERT OR DELETE ON posts
    FOR EACH ROW EXECUTE FUNCTION posts_counter();
