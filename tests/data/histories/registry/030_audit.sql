CREATE TABLE registry.events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    at timestamptz NOT NULL DEFAULT now(),
    account_id bigint,
    action text NOT NULL,
    detail jsonb
);
CREATE FUNCTION registry.log_publish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO registry.events (action, detail)
        VALUES ('publish', jsonb_build_object('version', NEW.id));
    RETURN NEW;
END
$$;
CREATE TRIGGER versions_publish AFTER INSERT ON registry.versions
    FOR EACH ROW EXECUTE FUNCTION registry.log_publish();
