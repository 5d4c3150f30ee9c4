CREATE SCHEMA audit;
CREATE TABLE audit.run_log (
    run_id bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    old_status text,
    new_status text NOT NULL
);
CREATE FUNCTION audit.log_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.run_log (run_id, old_status, new_status)
        VALUES (NEW.id, OLD.status, NEW.status);
    RETURN NEW;
END
$$;
CREATE TRIGGER runs_status_log AFTER UPDATE OF status ON runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION audit.log_status();
