ALTER TABLE posts ADD CONSTRAINT posts_body_length
    CHECK (char_length(body) BETWEEN 1 AND 20000) NOT VALID;
ALTER TABLE posts VALIDATE CONSTRAINT posts_body_length;
