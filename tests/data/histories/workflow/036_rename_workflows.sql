ALTER TABLE workflows RENAME TO workflow_definitions;
