UPDATE registry.versions SET license = upper(license) WHERE license IS NOT NULL;
ALTER TABLE registry.versions ADD CONSTRAINT versions_license_upper
    CHECK (license = upper(license));
