ALTER TABLE jobs ADD COLUMN max_attempts integer NOT NULL DEFAULT 25;
ALTER TABLE jobs ADD CONSTRAINT jobs_attempts_check CHECK (attempts >= 0);
