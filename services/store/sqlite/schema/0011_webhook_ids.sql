-- 10 -> 11: Standard Webhooks' webhook-id, the idempotency key of an
-- advertiser's webhooks (issue 17): the same id again from the same
-- advertiser answers the order it first stored, whatever order_id its
-- body names, and stores nothing. Written in the transaction (savepoint)
-- of its order, so an id is kept exactly when its order is. Rows older
-- than the retention (24 h, far beyond the 300 s a signature lives) are
-- pruned as new ones come.
CREATE TABLE webhook_ids (
  advertiser_id INTEGER NOT NULL,
  webhook_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (advertiser_id, webhook_id)
) WITHOUT ROWID;
CREATE INDEX webhook_ids_by_age ON webhook_ids (created_at);
