-- 0 -> 1: the catalog: editors, advertisers, who may join whom
-- (eligibility), and the catalog version that names a consistent view
-- for the caches. The same step as the SQLite schema's 0001, in
-- PostgreSQL's types (times are Unix seconds in BIGINT, as there). The
-- seed's rows are written in the same transaction
-- (store_pg_catalog.c).
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE catalog_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);
CREATE TABLE editors (
  id BIGINT PRIMARY KEY CHECK (id > 0),
  name TEXT NOT NULL,
  website TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE TABLE advertisers (
  id BIGINT PRIMARY KEY CHECK (id > 0),
  name TEXT NOT NULL CHECK (length(name) > 0),
  category TEXT NOT NULL,
  currency TEXT NOT NULL DEFAULT 'EUR' CHECK (length(currency) = 3),
  commission_rate_bps INTEGER NOT NULL
    CHECK (commission_rate_bps BETWEEN 0 AND 10000),
  status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'paused')),
  website TEXT NOT NULL DEFAULT '',
  cookie_days INTEGER NOT NULL DEFAULT 30 CHECK (cookie_days >= 0),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE eligibility (
  editor_id BIGINT NOT NULL REFERENCES editors (id) ON DELETE CASCADE,
  advertiser_id BIGINT NOT NULL
    REFERENCES advertisers (id) ON DELETE CASCADE,
  PRIMARY KEY (editor_id, advertiser_id)
);
CREATE INDEX eligibility_by_advertiser
  ON eligibility (advertiser_id, editor_id);
-- Any write to the catalog, by any server or by hand with psql, moves
-- the version on (once per row, as SQLite's triggers count), and so
-- retires every cached read on every server: they read the version per
-- call. TRUNCATE has no rows: it counts once.
CREATE FUNCTION catalog_version_bump() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1;
  RETURN NULL;
END
$$;
CREATE TRIGGER editors_changed AFTER INSERT OR UPDATE OR DELETE
  ON editors FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER advertisers_changed AFTER INSERT OR UPDATE OR DELETE
  ON advertisers FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER eligibility_changed AFTER INSERT OR UPDATE OR DELETE
  ON eligibility FOR EACH ROW EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER editors_truncated AFTER TRUNCATE
  ON editors FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER advertisers_truncated AFTER TRUNCATE
  ON advertisers FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER eligibility_truncated AFTER TRUNCATE
  ON eligibility FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();
