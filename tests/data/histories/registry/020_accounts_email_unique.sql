CREATE UNIQUE INDEX accounts_email_key ON registry.accounts (lower(email)) INCLUDE (id)
    WHERE email IS NOT NULL;
