-- 9 -> 10: postbacks to editors (issue 17). Endpoints an editor
-- registered (the secret kept as it is: an HMAC needs it; deleted ones
-- kept, their log with them), the events written in the transaction of
-- the change that caused them, one delivery per (event, endpoint) with
-- its job in the jobs table (kind 'postback', ref_id the delivery), and
-- the log of every attempt.
CREATE TABLE postback_endpoints (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  editor_id INTEGER NOT NULL REFERENCES editors (id),
  url TEXT NOT NULL,
  events TEXT NOT NULL, -- comma-separated event types
  secret TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  failure_streak INTEGER NOT NULL DEFAULT 0,
  disabled_reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);
CREATE INDEX postback_endpoints_live
  ON postback_endpoints (editor_id) WHERE deleted_at IS NULL;
CREATE TABLE postback_events (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  editor_id INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE postback_deliveries (
  id INTEGER PRIMARY KEY,
  event_id INTEGER NOT NULL REFERENCES postback_events (id),
  endpoint_id INTEGER NOT NULL REFERENCES postback_endpoints (id),
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX postback_deliveries_by_endpoint
  ON postback_deliveries (endpoint_id, state);
CREATE TABLE postback_attempts (
  id INTEGER PRIMARY KEY,
  delivery_id INTEGER NOT NULL REFERENCES postback_deliveries (id),
  endpoint_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  status_code INTEGER NOT NULL, -- 0: no HTTP answer
  latency_ms INTEGER NOT NULL,
  error TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX postback_attempts_by_endpoint
  ON postback_attempts (endpoint_id, id);
