INSERT INTO users (username, email, role, display_name) VALUES
    ('dave', 'dave@example.net', 'moderator', 'Dave');
INSERT INTO reports (post_id, reporter_id, reason, status) VALUES (4, 4, 'spam', 'open'),
    (2, 1, 'rude', 'closed');
