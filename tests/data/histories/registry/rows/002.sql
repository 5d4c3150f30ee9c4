INSERT INTO registry.packages (name, description) VALUES ('left-pad', 'Pads strings'),
    ('Requests', 'HTTP for humans'), ('tiny', NULL);
