ALTER TABLE workflows ADD COLUMN definition_hash text
    GENERATED ALWAYS AS (md5(definition::text)) STORED;
