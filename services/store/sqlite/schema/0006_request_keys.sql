-- 5 -> 6: what must hold across restores and resends.
-- orders_copy names the Redis copy of the orders (cache.h): random, and
-- replaced whenever that copy cannot be trusted, so a database restored
-- from an older file never reads the copy of the history it lost.
-- request_keys holds each mutating call's request key (the envelope's
-- request_id, scoped by the caller) with the answer it got, written in
-- the transaction of the call's change: the same call sent again gets
-- that answer and changes nothing. Rows older than the retention (24 h)
-- are pruned as new ones come.
CREATE TABLE request_keys (
  scope TEXT NOT NULL,
  request_id TEXT NOT NULL,
  method TEXT NOT NULL,
  digest BLOB NOT NULL, -- SHA-256 of the method and the request
  reply BLOB NOT NULL, -- the packed answer
  created_at INTEGER NOT NULL,
  PRIMARY KEY (scope, request_id, digest)
) WITHOUT ROWID;
CREATE INDEX request_keys_by_age ON request_keys (created_at);
INSERT INTO meta (key, value)
  VALUES ('orders_copy', lower(hex(randomblob(8))))
  ON CONFLICT (key) DO NOTHING;
