ALTER DOMAIN slug ADD CONSTRAINT slug_length CHECK (length(VALUE) <= 63);
