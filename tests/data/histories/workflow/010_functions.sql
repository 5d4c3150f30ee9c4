CREATE FUNCTION is_terminal(s text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    RETURN s IN ('succeeded', 'failed', 'cancelled');

CREATE FUNCTION run_progress(r runs) RETURNS numeric
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN count(*) = 0 THEN 0
                ELSE round(count(*) FILTER (WHERE is_terminal(s.status))::numeric / count(*), 2)
           END
      FROM steps s WHERE s.run_id = r.id;
END;
