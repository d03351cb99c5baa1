-- 0 -> 1: the catalog: editors, advertisers, who may join whom
-- (eligibility), and the catalog version that names a consistent view
-- for the caches. The seed's rows are written in the same transaction
-- (store_sqlite_catalog.c).
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE catalog_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);
CREATE TABLE editors (
  id INTEGER PRIMARY KEY CHECK (id > 0),
  name TEXT NOT NULL,
  website TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE advertisers (
  id INTEGER PRIMARY KEY CHECK (id > 0),
  name TEXT NOT NULL CHECK (length(name) > 0),
  category TEXT NOT NULL,
  currency TEXT NOT NULL DEFAULT 'EUR' CHECK (length(currency) = 3),
  commission_rate_bps INTEGER NOT NULL
    CHECK (commission_rate_bps BETWEEN 0 AND 10000),
  status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'paused')),
  website TEXT NOT NULL DEFAULT '',
  cookie_days INTEGER NOT NULL DEFAULT 30 CHECK (cookie_days >= 0),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE eligibility (
  editor_id INTEGER NOT NULL REFERENCES editors (id) ON DELETE CASCADE,
  advertiser_id INTEGER NOT NULL
    REFERENCES advertisers (id) ON DELETE CASCADE,
  PRIMARY KEY (editor_id, advertiser_id)
) WITHOUT ROWID;
CREATE INDEX eligibility_by_advertiser
  ON eligibility (advertiser_id, editor_id);
-- Any write to the catalog, by this server or by hand with the sqlite3
-- shell, moves the version on, and so retires every cached read.
CREATE TRIGGER editors_ins AFTER INSERT ON editors BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER editors_upd AFTER UPDATE ON editors BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER editors_del AFTER DELETE ON editors BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER advertisers_ins AFTER INSERT ON advertisers BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER advertisers_upd AFTER UPDATE ON advertisers BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER advertisers_del AFTER DELETE ON advertisers BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER eligibility_ins AFTER INSERT ON eligibility BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER eligibility_upd AFTER UPDATE ON eligibility BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER eligibility_del AFTER DELETE ON eligibility BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
