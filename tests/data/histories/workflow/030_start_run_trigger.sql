CREATE FUNCTION start_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE runs SET status = 'running', started_at = coalesce(started_at, now())
     WHERE id = NEW.run_id AND status = 'pending';
    RETURN NEW;
END
$$;
CREATE TRIGGER run_steps_start AFTER UPDATE OF status ON run_steps
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION start_run();
