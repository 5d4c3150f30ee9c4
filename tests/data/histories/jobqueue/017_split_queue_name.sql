-- "billing.email" becomes namespace "billing", short name "email".
ALTER TABLE queues ADD COLUMN namespace text, ADD COLUMN short_name text;
UPDATE queues SET namespace = split_part(name, '.', 1),
                  short_name = coalesce(nullif(split_part(name, '.', 2), ''), name);
