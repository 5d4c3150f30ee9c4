ALTER TABLE registry.accounts RENAME COLUMN login TO username;
