ALTER TYPE job_state RENAME VALUE 'done' TO 'succeeded';
