ALTER TABLE queues ALTER COLUMN namespace SET NOT NULL,
                   ALTER COLUMN short_name SET NOT NULL;
ALTER TABLE queues ADD CONSTRAINT queues_namespace_short_name_key UNIQUE (namespace, short_name);
ALTER TABLE queues DROP COLUMN name;
