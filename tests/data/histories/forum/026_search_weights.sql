CREATE OR REPLACE FUNCTION posts_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := setweight(to_tsvector('english', coalesce(NEW.body, '')), 'A');
    RETURN NEW;
END
$$;
