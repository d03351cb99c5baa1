-- 2 -> 3: orders reported by partners, and their history.
CREATE TABLE orders (
  seq INTEGER PRIMARY KEY, -- arrival order: the list cursor
  order_id TEXT NOT NULL UNIQUE,
  advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),
  editor_id INTEGER NOT NULL REFERENCES editors (id),
  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
  commission_cents INTEGER NOT NULL
    CHECK (commission_cents BETWEEN 0 AND amount_cents),
  currency TEXT NOT NULL CHECK (length(currency) = 3),
  status TEXT NOT NULL
    CHECK (status IN ('pending', 'approved', 'declined')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- Every change counts up rev; the Redis copy is current when
  -- cached_rev has caught up with it.
  rev INTEGER NOT NULL DEFAULT 1,
  cached_rev INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX orders_uncached ON orders (seq) WHERE cached_rev < rev;
CREATE INDEX orders_by_editor ON orders (editor_id, seq);
CREATE INDEX orders_by_advertiser ON orders (advertiser_id, seq);
CREATE TABLE order_events (
  id INTEGER PRIMARY KEY,
  order_id TEXT NOT NULL,
  status TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX order_events_by_order ON order_events (order_id);
