INSERT INTO reactions VALUES (1, 2, 'like'), (1, 3, 'laugh'), (3, 1, 'like');
INSERT INTO post_revisions (post_id, revision, body) VALUES (3, 1, 'Stack trace attached?');
