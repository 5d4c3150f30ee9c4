ALTER TABLE jobs ADD COLUMN uuid uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX jobs_uuid ON jobs (uuid);
