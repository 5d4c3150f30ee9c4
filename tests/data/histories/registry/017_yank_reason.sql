ALTER TABLE registry.versions ADD COLUMN yank_reason text;
ALTER TABLE registry.versions ADD CONSTRAINT versions_yank_reason
    CHECK (yanked OR yank_reason IS NULL);
