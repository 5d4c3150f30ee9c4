CREATE FUNCTION retry_delay(attempts integer) RETURNS interval
    LANGUAGE sql IMMUTABLE
    RETURN make_interval(secs => least(power(2, attempts), 3600));

CREATE FUNCTION schedule_retry(job bigint, err text) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    UPDATE jobs SET state = 'retrying', last_error = err,
                    run_at = now() + retry_delay(attempts), attempts = attempts + 1
     WHERE id = job;
END;
