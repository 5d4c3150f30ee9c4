ALTER TABLE runs RENAME COLUMN input TO params;
