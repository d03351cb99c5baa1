-- 9 -> 10: catalog management and orders in detail (issue 18).
-- An advertiser may take orders in other currencies than its own (off
-- unless an admin turns it on). Each order keeps the commission its
-- programme's rate gave when it arrived (amount * rate / 10000, rounded
-- half up to the cent), beside the partner's; orders already stored get
-- it from their advertiser's rate now, and a new revision so that the
-- Redis copy is written again with it. The partial indexes hold only the
-- orders whose two commissions differ (the exception), one per filter
-- combination of the list, so ?commission_mismatch=true reads its page
-- and no other row, as step 9's indexes do for the plain list.
ALTER TABLE advertisers ADD COLUMN allow_other_currencies INTEGER NOT NULL DEFAULT 0
  CHECK (allow_other_currencies IN (0, 1));
ALTER TABLE orders ADD COLUMN expected_commission_cents BIGINT NOT NULL
  DEFAULT 0;
UPDATE orders SET expected_commission_cents = (amount_cents *
  (SELECT a.commission_rate_bps FROM advertisers a
    WHERE a.id = orders.advertiser_id) + 5000) / 10000,
  rev = rev + 1;
CREATE INDEX orders_mismatch ON orders (seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_editor ON orders (editor_id, seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_advertiser ON orders (advertiser_id, seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_status ON orders (status, seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_editor_status
  ON orders (editor_id, status, seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_advertiser_status
  ON orders (advertiser_id, status, seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_editor_advertiser
  ON orders (editor_id, advertiser_id, seq)
  WHERE commission_cents <> expected_commission_cents;
CREATE INDEX orders_mismatch_by_editor_advertiser_status
  ON orders (editor_id, advertiser_id, status, seq)
  WHERE commission_cents <> expected_commission_cents;
