INSERT INTO registry.versions (package_id, version, yanked) VALUES (1, '1.0.0', false),
    (1, '1.1.0', true), (2, '2.31.0', false), (3, '0.1.0-beta', false);
