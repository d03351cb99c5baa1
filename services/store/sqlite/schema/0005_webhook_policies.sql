-- 4 -> 5: per advertiser, whether its webhooks must carry the
-- timestamped signature (t=<unix>,v1=<hex>): the plain hex form has no
-- time in it, so a captured request can be replayed for ever. No row:
-- the server's --webhook-require-timestamp decides alone.
CREATE TABLE webhook_policies (
  advertiser_id INTEGER PRIMARY KEY REFERENCES advertisers (id),
  require_timestamp INTEGER NOT NULL CHECK (require_timestamp IN (0, 1)),
  updated_at INTEGER NOT NULL
);
