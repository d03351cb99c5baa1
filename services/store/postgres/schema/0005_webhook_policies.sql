-- 4 -> 5: per advertiser, whether its webhooks must carry the
-- timestamped signature. No row: the server's
-- --webhook-require-timestamp decides alone.
CREATE TABLE webhook_policies (
  advertiser_id BIGINT PRIMARY KEY REFERENCES advertisers (id),
  require_timestamp INTEGER NOT NULL CHECK (require_timestamp IN (0, 1)),
  updated_at BIGINT NOT NULL
);
