-- 7 -> 8: nothing to do on SQLite. The step exists so that both backends
-- keep one schema history with the same numbers: on PostgreSQL it makes
-- the catalog triggers NOTIFY the servers (LISTEN/NOTIFY keeps each
-- server's catalog version in memory); SQLite has one server, which
-- reads its version from the file per call.
SELECT 1;
