COMMENT ON TABLE jobs IS 'One unit of work; workers poll with FOR UPDATE SKIP LOCKED.';
COMMENT ON COLUMN jobs.args IS 'Arguments of the job, as the enqueuer gave them.';
COMMENT ON TYPE job_state IS 'Life cycle of a job.';
