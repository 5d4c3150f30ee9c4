ALTER TABLE steps RENAME TO run_steps;
