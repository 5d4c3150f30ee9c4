-- "0 3 * * * TZ=Europe/Paris" becomes cron_expr "0 3 * * *", timezone "Europe/Paris".
ALTER TABLE schedules RENAME COLUMN cron TO cron_expr;
ALTER TABLE schedules ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
UPDATE schedules
   SET timezone = split_part(cron_expr, ' TZ=', 2), cron_expr = split_part(cron_expr, ' TZ=', 1)
 WHERE cron_expr LIKE '% TZ=%';
