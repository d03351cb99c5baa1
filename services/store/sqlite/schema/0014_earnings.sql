-- 13 -> 14: earnings reports (issue 18). Orders summed into buckets per
-- (editor, UTC day, advertiser, currency, status), again per UTC month
-- (a report by advertiser or status over whole months reads those, and
-- days only for the months it cuts), and per UTC hour for reports in
-- another fixed offset than UTC (a local day is 24 UTC hours that
-- straddle two UTC days). A report reads its buckets, never the orders:
-- at most one row per bucket, however many orders it holds.
-- Money stays integer cents, summed per currency (never across).
-- The triggers keep both tables in the statement that writes the order,
-- so in its transaction (and in its savepoint in a group-commit batch):
-- every path that writes an order keeps them right, the bulk loads of
-- the benchmarks too. A new order adds itself to its buckets; a change of
-- any bucketed field (a status move) takes the old row out and puts the
-- new one in. Orders stored before this step are summed here, once.
CREATE TABLE earnings_daily (
  editor_id INTEGER NOT NULL,
  day INTEGER NOT NULL, -- created_at / 86400: UTC days since 1970-01-01
  advertiser_id INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  orders INTEGER NOT NULL,
  amount_cents INTEGER NOT NULL,
  commission_cents INTEGER NOT NULL,
  mismatched INTEGER NOT NULL, -- commission <> expected_commission
  PRIMARY KEY (editor_id, day, advertiser_id, currency, status)
) WITHOUT ROWID;
CREATE TABLE earnings_monthly (
  editor_id INTEGER NOT NULL,
  month INTEGER NOT NULL, -- UTC year * 12 + month - 1
  advertiser_id INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  orders INTEGER NOT NULL,
  amount_cents INTEGER NOT NULL,
  commission_cents INTEGER NOT NULL,
  mismatched INTEGER NOT NULL,
  PRIMARY KEY (editor_id, month, advertiser_id, currency, status)
) WITHOUT ROWID;
CREATE TABLE earnings_hourly (
  editor_id INTEGER NOT NULL,
  hour INTEGER NOT NULL, -- created_at / 3600: UTC hours since 1970-01-01
  advertiser_id INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  orders INTEGER NOT NULL,
  amount_cents INTEGER NOT NULL,
  commission_cents INTEGER NOT NULL,
  mismatched INTEGER NOT NULL,
  PRIMARY KEY (editor_id, hour, advertiser_id, currency, status)
) WITHOUT ROWID;
INSERT INTO earnings_daily
  SELECT editor_id, created_at / 86400, advertiser_id, currency, status,
    count(*), sum(amount_cents), sum(commission_cents),
    sum(commission_cents <> expected_commission_cents)
  FROM orders GROUP BY 1, 2, 3, 4, 5;
INSERT INTO earnings_monthly
  SELECT editor_id,
    CAST(strftime('%Y', created_at, 'unixepoch') AS INTEGER) * 12
      + CAST(strftime('%m', created_at, 'unixepoch') AS INTEGER) - 1,
    advertiser_id, currency, status,
    count(*), sum(amount_cents), sum(commission_cents),
    sum(commission_cents <> expected_commission_cents)
  FROM orders GROUP BY 1, 2, 3, 4, 5;
INSERT INTO earnings_hourly
  SELECT editor_id, created_at / 3600, advertiser_id, currency, status,
    count(*), sum(amount_cents), sum(commission_cents),
    sum(commission_cents <> expected_commission_cents)
  FROM orders GROUP BY 1, 2, 3, 4, 5;
CREATE TRIGGER orders_earnings_insert AFTER INSERT ON orders BEGIN
  INSERT INTO earnings_daily VALUES (NEW.editor_id, NEW.created_at / 86400,
    NEW.advertiser_id, NEW.currency, NEW.status, 1, NEW.amount_cents,
    NEW.commission_cents,
    NEW.commission_cents <> NEW.expected_commission_cents)
  ON CONFLICT DO UPDATE SET orders = orders + 1,
    amount_cents = amount_cents + excluded.amount_cents,
    commission_cents = commission_cents + excluded.commission_cents,
    mismatched = mismatched + excluded.mismatched;
  INSERT INTO earnings_monthly VALUES (NEW.editor_id,
    CAST(strftime('%Y', NEW.created_at, 'unixepoch') AS INTEGER) * 12
      + CAST(strftime('%m', NEW.created_at, 'unixepoch') AS INTEGER) - 1,
    NEW.advertiser_id, NEW.currency, NEW.status, 1, NEW.amount_cents,
    NEW.commission_cents,
    NEW.commission_cents <> NEW.expected_commission_cents)
  ON CONFLICT DO UPDATE SET orders = orders + 1,
    amount_cents = amount_cents + excluded.amount_cents,
    commission_cents = commission_cents + excluded.commission_cents,
    mismatched = mismatched + excluded.mismatched;
  INSERT INTO earnings_hourly VALUES (NEW.editor_id, NEW.created_at / 3600,
    NEW.advertiser_id, NEW.currency, NEW.status, 1, NEW.amount_cents,
    NEW.commission_cents,
    NEW.commission_cents <> NEW.expected_commission_cents)
  ON CONFLICT DO UPDATE SET orders = orders + 1,
    amount_cents = amount_cents + excluded.amount_cents,
    commission_cents = commission_cents + excluded.commission_cents,
    mismatched = mismatched + excluded.mismatched;
END;
-- The old row's buckets exist: it was added to them when it was written
-- (or summed above).
CREATE TRIGGER orders_earnings_remove AFTER DELETE ON orders BEGIN
  UPDATE earnings_daily SET orders = orders - 1,
    amount_cents = amount_cents - OLD.amount_cents,
    commission_cents = commission_cents - OLD.commission_cents,
    mismatched = mismatched -
      (OLD.commission_cents <> OLD.expected_commission_cents)
  WHERE editor_id = OLD.editor_id AND day = OLD.created_at / 86400
    AND advertiser_id = OLD.advertiser_id AND currency = OLD.currency
    AND status = OLD.status;
  UPDATE earnings_monthly SET orders = orders - 1,
    amount_cents = amount_cents - OLD.amount_cents,
    commission_cents = commission_cents - OLD.commission_cents,
    mismatched = mismatched -
      (OLD.commission_cents <> OLD.expected_commission_cents)
  WHERE editor_id = OLD.editor_id
    AND month = CAST(strftime('%Y', OLD.created_at, 'unixepoch') AS INTEGER)
      * 12 + CAST(strftime('%m', OLD.created_at, 'unixepoch') AS INTEGER) - 1
    AND advertiser_id = OLD.advertiser_id AND currency = OLD.currency
    AND status = OLD.status;
  UPDATE earnings_hourly SET orders = orders - 1,
    amount_cents = amount_cents - OLD.amount_cents,
    commission_cents = commission_cents - OLD.commission_cents,
    mismatched = mismatched -
      (OLD.commission_cents <> OLD.expected_commission_cents)
  WHERE editor_id = OLD.editor_id AND hour = OLD.created_at / 3600
    AND advertiser_id = OLD.advertiser_id AND currency = OLD.currency
    AND status = OLD.status;
END;
-- Only a change of a summed or bucketing column fires it: the Redis
-- bookkeeping (cached_rev) and updated_at alone do not.
CREATE TRIGGER orders_earnings_move AFTER UPDATE OF editor_id,
  advertiser_id, currency, status, amount_cents, commission_cents,
  expected_commission_cents, created_at ON orders
  WHEN OLD.editor_id IS NOT NEW.editor_id
    OR OLD.advertiser_id IS NOT NEW.advertiser_id
    OR OLD.currency IS NOT NEW.currency OR OLD.status IS NOT NEW.status
    OR OLD.amount_cents IS NOT NEW.amount_cents
    OR OLD.commission_cents IS NOT NEW.commission_cents
    OR OLD.expected_commission_cents IS NOT NEW.expected_commission_cents
    OR OLD.created_at IS NOT NEW.created_at BEGIN
  UPDATE earnings_daily SET orders = orders - 1,
    amount_cents = amount_cents - OLD.amount_cents,
    commission_cents = commission_cents - OLD.commission_cents,
    mismatched = mismatched -
      (OLD.commission_cents <> OLD.expected_commission_cents)
  WHERE editor_id = OLD.editor_id AND day = OLD.created_at / 86400
    AND advertiser_id = OLD.advertiser_id AND currency = OLD.currency
    AND status = OLD.status;
  UPDATE earnings_monthly SET orders = orders - 1,
    amount_cents = amount_cents - OLD.amount_cents,
    commission_cents = commission_cents - OLD.commission_cents,
    mismatched = mismatched -
      (OLD.commission_cents <> OLD.expected_commission_cents)
  WHERE editor_id = OLD.editor_id
    AND month = CAST(strftime('%Y', OLD.created_at, 'unixepoch') AS INTEGER)
      * 12 + CAST(strftime('%m', OLD.created_at, 'unixepoch') AS INTEGER) - 1
    AND advertiser_id = OLD.advertiser_id AND currency = OLD.currency
    AND status = OLD.status;
  UPDATE earnings_hourly SET orders = orders - 1,
    amount_cents = amount_cents - OLD.amount_cents,
    commission_cents = commission_cents - OLD.commission_cents,
    mismatched = mismatched -
      (OLD.commission_cents <> OLD.expected_commission_cents)
  WHERE editor_id = OLD.editor_id AND hour = OLD.created_at / 3600
    AND advertiser_id = OLD.advertiser_id AND currency = OLD.currency
    AND status = OLD.status;
  INSERT INTO earnings_daily VALUES (NEW.editor_id, NEW.created_at / 86400,
    NEW.advertiser_id, NEW.currency, NEW.status, 1, NEW.amount_cents,
    NEW.commission_cents,
    NEW.commission_cents <> NEW.expected_commission_cents)
  ON CONFLICT DO UPDATE SET orders = orders + 1,
    amount_cents = amount_cents + excluded.amount_cents,
    commission_cents = commission_cents + excluded.commission_cents,
    mismatched = mismatched + excluded.mismatched;
  INSERT INTO earnings_monthly VALUES (NEW.editor_id,
    CAST(strftime('%Y', NEW.created_at, 'unixepoch') AS INTEGER) * 12
      + CAST(strftime('%m', NEW.created_at, 'unixepoch') AS INTEGER) - 1,
    NEW.advertiser_id, NEW.currency, NEW.status, 1, NEW.amount_cents,
    NEW.commission_cents,
    NEW.commission_cents <> NEW.expected_commission_cents)
  ON CONFLICT DO UPDATE SET orders = orders + 1,
    amount_cents = amount_cents + excluded.amount_cents,
    commission_cents = commission_cents + excluded.commission_cents,
    mismatched = mismatched + excluded.mismatched;
  INSERT INTO earnings_hourly VALUES (NEW.editor_id, NEW.created_at / 3600,
    NEW.advertiser_id, NEW.currency, NEW.status, 1, NEW.amount_cents,
    NEW.commission_cents,
    NEW.commission_cents <> NEW.expected_commission_cents)
  ON CONFLICT DO UPDATE SET orders = orders + 1,
    amount_cents = amount_cents + excluded.amount_cents,
    commission_cents = commission_cents + excluded.commission_cents,
    mismatched = mismatched + excluded.mismatched;
END;
