CREATE VIEW registry.latest_versions AS
SELECT DISTINCT ON (v.package_id) p.name, v.version, v.published_at
  FROM registry.versions v JOIN registry.packages p ON p.id = v.package_id
 WHERE NOT v.yanked
 ORDER BY v.package_id, v.major DESC, v.published_at DESC;
