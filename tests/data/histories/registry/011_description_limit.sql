ALTER TABLE registry.packages ADD CONSTRAINT packages_description_length
    CHECK (char_length(description) <= 4000);
