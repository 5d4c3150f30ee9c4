INSERT INTO registry.versions (id, package_id, version, readme, license)
    VALUES (5, 2, '2.32.0', '# Requests', 'APACHE-2.0');
INSERT INTO registry.dependencies (version_id, depends_on, requirement, kind)
    VALUES (3, 1, '>=1.0', 'runtime'), (5, 3, '*', 'optional');
