ALTER TABLE runs ADD COLUMN schedule_id integer REFERENCES schedules (id) ON DELETE SET NULL;
