INSERT INTO registry.accounts (login, email) VALUES ('azer', 'azer@example.com'), ('kr', NULL);
INSERT INTO registry.package_owners VALUES (1, 1), (2, 2);
INSERT INTO registry.downloads VALUES (1, '2024-03-01', 10), (3, '2024-03-01', 1000);
