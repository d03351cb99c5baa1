-- 13 -> 14: earnings reports (issue 18). Orders summed into buckets per
-- (editor, UTC day, advertiser, currency, status), again per UTC month
-- (a report by advertiser or status over whole months reads those, and
-- days only for the months it cuts), and per UTC hour for reports in
-- another fixed offset than UTC (a local day is 24 UTC hours that
-- straddle two UTC days). A report reads its buckets, never the orders. Money stays integer cents, summed per currency.
-- The trigger keeps both tables in the statement that writes the order,
-- so in its transaction (and its savepoint in a group-commit batch,
-- pipelined or not). Each bucket is split in shards by the writing
-- connection (pg_backend_pid() % 16), so that servers group-committing
-- at once do not queue on one hot bucket's row lock until the other's
-- commit (nor deadlock over two buckets taken in opposite orders); a
-- report sums the shards. A change is written as deltas into the
-- writer's shard: a move adds -1 to the old bucket and +1 to the new.
-- Orders stored before this step are summed here, once (shard 0).
CREATE TABLE earnings_daily (
  editor_id BIGINT NOT NULL,
  day BIGINT NOT NULL, -- created_at / 86400: UTC days since 1970-01-01
  advertiser_id BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  shard SMALLINT NOT NULL,
  orders BIGINT NOT NULL,
  amount_cents BIGINT NOT NULL,
  commission_cents BIGINT NOT NULL,
  mismatched BIGINT NOT NULL, -- commission <> expected_commission
  PRIMARY KEY (editor_id, day, advertiser_id, currency, status, shard)
);
CREATE TABLE earnings_monthly (
  editor_id BIGINT NOT NULL,
  month BIGINT NOT NULL, -- UTC year * 12 + month - 1
  advertiser_id BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  shard SMALLINT NOT NULL,
  orders BIGINT NOT NULL,
  amount_cents BIGINT NOT NULL,
  commission_cents BIGINT NOT NULL,
  mismatched BIGINT NOT NULL,
  PRIMARY KEY (editor_id, month, advertiser_id, currency, status, shard)
);
-- The UTC month of a time in Unix seconds, as year * 12 + month - 1.
CREATE FUNCTION earnings_month(t bigint) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT (extract(year FROM to_timestamp(t) AT TIME ZONE 'UTC') * 12
     + extract(month FROM to_timestamp(t) AT TIME ZONE 'UTC') - 1)::bigint $$;
CREATE TABLE earnings_hourly (
  editor_id BIGINT NOT NULL,
  hour BIGINT NOT NULL, -- created_at / 3600: UTC hours since 1970-01-01
  advertiser_id BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  shard SMALLINT NOT NULL,
  orders BIGINT NOT NULL,
  amount_cents BIGINT NOT NULL,
  commission_cents BIGINT NOT NULL,
  mismatched BIGINT NOT NULL,
  PRIMARY KEY (editor_id, hour, advertiser_id, currency, status, shard)
);
INSERT INTO earnings_daily
  SELECT editor_id, created_at / 86400, advertiser_id, currency, status, 0,
    count(*), sum(amount_cents), sum(commission_cents),
    count(*) FILTER (WHERE commission_cents <> expected_commission_cents)
  FROM orders GROUP BY 1, 2, 3, 4, 5;
INSERT INTO earnings_monthly
  SELECT editor_id, earnings_month(created_at), advertiser_id, currency,
    status, 0, count(*), sum(amount_cents), sum(commission_cents),
    count(*) FILTER (WHERE commission_cents <> expected_commission_cents)
  FROM orders GROUP BY 1, 2, 3, 4, 5;
INSERT INTO earnings_hourly
  SELECT editor_id, created_at / 3600, advertiser_id, currency, status, 0,
    count(*), sum(amount_cents), sum(commission_cents),
    count(*) FILTER (WHERE commission_cents <> expected_commission_cents)
  FROM orders GROUP BY 1, 2, 3, 4, 5;
CREATE FUNCTION orders_earnings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sh smallint := pg_backend_pid() % 16;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO earnings_daily AS d VALUES (OLD.editor_id,
      OLD.created_at / 86400, OLD.advertiser_id, OLD.currency, OLD.status,
      sh, -1, -OLD.amount_cents, -OLD.commission_cents,
      -(OLD.commission_cents <> OLD.expected_commission_cents)::int)
    ON CONFLICT (editor_id, day, advertiser_id, currency, status, shard)
    DO UPDATE SET orders = d.orders + excluded.orders,
      amount_cents = d.amount_cents + excluded.amount_cents,
      commission_cents = d.commission_cents + excluded.commission_cents,
      mismatched = d.mismatched + excluded.mismatched;
    INSERT INTO earnings_monthly AS d VALUES (OLD.editor_id,
      earnings_month(OLD.created_at), OLD.advertiser_id, OLD.currency,
      OLD.status, sh, -1, -OLD.amount_cents, -OLD.commission_cents,
      -(OLD.commission_cents <> OLD.expected_commission_cents)::int)
    ON CONFLICT (editor_id, month, advertiser_id, currency, status, shard)
    DO UPDATE SET orders = d.orders + excluded.orders,
      amount_cents = d.amount_cents + excluded.amount_cents,
      commission_cents = d.commission_cents + excluded.commission_cents,
      mismatched = d.mismatched + excluded.mismatched;
    INSERT INTO earnings_hourly AS d VALUES (OLD.editor_id,
      OLD.created_at / 3600, OLD.advertiser_id, OLD.currency, OLD.status,
      sh, -1, -OLD.amount_cents, -OLD.commission_cents,
      -(OLD.commission_cents <> OLD.expected_commission_cents)::int)
    ON CONFLICT (editor_id, hour, advertiser_id, currency, status, shard)
    DO UPDATE SET orders = d.orders + excluded.orders,
      amount_cents = d.amount_cents + excluded.amount_cents,
      commission_cents = d.commission_cents + excluded.commission_cents,
      mismatched = d.mismatched + excluded.mismatched;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO earnings_daily AS d VALUES (NEW.editor_id,
      NEW.created_at / 86400, NEW.advertiser_id, NEW.currency, NEW.status,
      sh, 1, NEW.amount_cents, NEW.commission_cents,
      (NEW.commission_cents <> NEW.expected_commission_cents)::int)
    ON CONFLICT (editor_id, day, advertiser_id, currency, status, shard)
    DO UPDATE SET orders = d.orders + excluded.orders,
      amount_cents = d.amount_cents + excluded.amount_cents,
      commission_cents = d.commission_cents + excluded.commission_cents,
      mismatched = d.mismatched + excluded.mismatched;
    INSERT INTO earnings_monthly AS d VALUES (NEW.editor_id,
      earnings_month(NEW.created_at), NEW.advertiser_id, NEW.currency,
      NEW.status, sh, 1, NEW.amount_cents, NEW.commission_cents,
      (NEW.commission_cents <> NEW.expected_commission_cents)::int)
    ON CONFLICT (editor_id, month, advertiser_id, currency, status, shard)
    DO UPDATE SET orders = d.orders + excluded.orders,
      amount_cents = d.amount_cents + excluded.amount_cents,
      commission_cents = d.commission_cents + excluded.commission_cents,
      mismatched = d.mismatched + excluded.mismatched;
    INSERT INTO earnings_hourly AS d VALUES (NEW.editor_id,
      NEW.created_at / 3600, NEW.advertiser_id, NEW.currency, NEW.status,
      sh, 1, NEW.amount_cents, NEW.commission_cents,
      (NEW.commission_cents <> NEW.expected_commission_cents)::int)
    ON CONFLICT (editor_id, hour, advertiser_id, currency, status, shard)
    DO UPDATE SET orders = d.orders + excluded.orders,
      amount_cents = d.amount_cents + excluded.amount_cents,
      commission_cents = d.commission_cents + excluded.commission_cents,
      mismatched = d.mismatched + excluded.mismatched;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER orders_earnings_insert AFTER INSERT OR DELETE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_earnings();
-- Only a change of a summed or bucketing column fires it: the Redis
-- bookkeeping (cached_rev) does not.
CREATE TRIGGER orders_earnings_move AFTER UPDATE OF editor_id,
  advertiser_id, currency, status, amount_cents, commission_cents,
  expected_commission_cents, created_at ON orders
  FOR EACH ROW WHEN ((OLD.editor_id, OLD.advertiser_id, OLD.currency,
    OLD.status, OLD.amount_cents, OLD.commission_cents,
    OLD.expected_commission_cents, OLD.created_at) IS DISTINCT FROM
    (NEW.editor_id, NEW.advertiser_id, NEW.currency, NEW.status,
    NEW.amount_cents, NEW.commission_cents, NEW.expected_commission_cents,
    NEW.created_at))
  EXECUTE FUNCTION orders_earnings();
