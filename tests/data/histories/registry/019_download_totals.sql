CREATE MATERIALIZED VIEW registry.download_totals AS
SELECT v.package_id, sum(d.count) AS downloads
  FROM registry.downloads d JOIN registry.versions v ON v.id = d.version_id
 GROUP BY v.package_id;
CREATE UNIQUE INDEX download_totals_package ON registry.download_totals (package_id);
