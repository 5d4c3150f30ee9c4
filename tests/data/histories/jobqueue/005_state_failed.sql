ALTER TYPE job_state ADD VALUE 'failed';
