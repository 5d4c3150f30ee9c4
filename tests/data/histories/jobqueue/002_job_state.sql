CREATE TYPE job_state AS ENUM ('queued', 'running', 'done');
