-- 5 -> 6: what must hold across restores and resends: the id of the
-- Redis copy of the orders, and each mutating call's request key with
-- the answer it got. On PostgreSQL call_begin inserts the key first
-- (reply NULL until call_end fills it in the same transaction): the
-- primary key makes a second server with the same call wait for the
-- first one's commit, then read its answer.
CREATE TABLE request_keys (
  scope TEXT NOT NULL,
  request_id TEXT NOT NULL,
  method TEXT NOT NULL,
  digest BYTEA NOT NULL, -- SHA-256 of the method and the request
  reply BYTEA, -- the packed answer; NULL only inside call_begin's transaction
  created_at BIGINT NOT NULL,
  PRIMARY KEY (scope, request_id, digest)
);
CREATE INDEX request_keys_by_age ON request_keys (created_at);
INSERT INTO meta (key, value)
  VALUES ('orders_copy', substr(md5(gen_random_uuid()::text), 1, 16))
  ON CONFLICT (key) DO NOTHING;
