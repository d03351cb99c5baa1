-- 3 -> 4: API keys (only the SHA-256 of each secret is kept) and the
-- advertisers' own webhook signing secrets (kept as they are: an HMAC
-- needs the secret itself).
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
  editor_id INTEGER REFERENCES editors (id),
  secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  CHECK ((role = 'admin') = (editor_id IS NULL))
);
CREATE TABLE webhook_secrets (
  id INTEGER PRIMARY KEY,
  advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),
  secret TEXT NOT NULL CHECK (length(secret) >= 32),
  created_at INTEGER NOT NULL,
  expires_at INTEGER -- NULL: the current one
);
CREATE INDEX webhook_secrets_by_advertiser
  ON webhook_secrets (advertiser_id, id);
