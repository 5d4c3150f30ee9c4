ALTER TABLE registry.package_owners ADD COLUMN role text NOT NULL DEFAULT 'owner'
    CHECK (role IN ('owner', 'maintainer'));
