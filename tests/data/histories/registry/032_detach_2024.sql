ALTER TABLE registry.downloads DETACH PARTITION registry.downloads_2024;
