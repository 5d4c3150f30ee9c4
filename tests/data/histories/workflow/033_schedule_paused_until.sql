ALTER TABLE schedules ADD COLUMN paused_until timestamptz;
-- lockplane:fill-with schedules.paused_until CASE WHEN enabled THEN NULL ELSE 'infinity'::timestamptz END
UPDATE schedules SET paused_until = 'infinity' WHERE NOT enabled;
ALTER TABLE schedules DROP COLUMN enabled;
