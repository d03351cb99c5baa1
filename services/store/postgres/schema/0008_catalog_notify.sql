-- 7 -> 8: catalog changes are announced. Every server keeps the catalog
-- version in memory and LISTENs on affiliate_catalog (store_pg_watch.c):
-- a write to the catalog, by any server or by hand with psql, notifies
-- it at commit (PostgreSQL folds a transaction's identical notifications
-- into one), and the server reads the version again. The version row is
-- still moved as before, so a server that is not listening (starting,
-- reconnecting) reads it per call and misses nothing.
CREATE OR REPLACE FUNCTION catalog_version_bump() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  UPDATE catalog_version SET version = version + 1 WHERE id = 1;
  PERFORM pg_notify('affiliate_catalog', '');
  RETURN NULL;
END
$$;
