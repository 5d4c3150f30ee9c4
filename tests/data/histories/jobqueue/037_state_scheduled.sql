ALTER TYPE job_state ADD VALUE 'scheduled' BEFORE 'queued';
