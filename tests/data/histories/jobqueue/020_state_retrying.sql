ALTER TYPE job_state ADD VALUE 'retrying' BEFORE 'running';
