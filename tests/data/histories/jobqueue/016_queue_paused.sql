ALTER TABLE queues ADD COLUMN paused boolean NOT NULL DEFAULT false;
