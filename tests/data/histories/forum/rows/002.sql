INSERT INTO users (username, email) VALUES ('Alice', 'Alice@example.com'),
    ('bob', 'bob@example.com'), ('carol', 'carol@example.org');
