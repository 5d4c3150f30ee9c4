INSERT INTO boards (slug, title) VALUES ('general', 'General'), ('help', 'Help!');
INSERT INTO threads (board_id, author_id, title) VALUES (1, 1, 'Welcome'), (2, 2, 'It broke');
INSERT INTO posts (thread_id, author_id, body) VALUES (1, 1, 'Hello everyone'),
    (1, 2, 'Hi Alice'), (2, 2, 'Stack trace attached'), (2, NULL, 'from a deleted user');
