INSERT INTO queues (name, namespace, short_name) VALUES ('mail.digest', 'mail', 'digest');
