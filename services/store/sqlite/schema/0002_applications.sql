-- 1 -> 2: applications, their history, and the job outbox.
CREATE TABLE applications (
  id INTEGER PRIMARY KEY,
  editor_id INTEGER NOT NULL REFERENCES editors (id),
  advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),
  status TEXT NOT NULL
    CHECK (status IN ('pending', 'approved', 'rejected')),
  reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- The request that made it: the same request again (NNG resends a
  -- request whose connection dropped) gets it back, not a conflict.
  request_id TEXT NOT NULL DEFAULT ''
);
-- At most one open (pending or approved) application per pair: the
-- database, not only the code, says so.
CREATE UNIQUE INDEX applications_one_open
  ON applications (editor_id, advertiser_id)
  WHERE status IN ('pending', 'approved');
CREATE INDEX applications_by_editor ON applications (editor_id, id);
CREATE TABLE application_events (
  id INTEGER PRIMARY KEY,
  application_id INTEGER NOT NULL REFERENCES applications (id),
  status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  at INTEGER NOT NULL
);
CREATE INDEX application_events_by_application
  ON application_events (application_id);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  ref_id INTEGER NOT NULL,
  payload BLOB NOT NULL,
  state TEXT NOT NULL
    CHECK (state IN ('queued', 'inflight', 'done', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  due_at INTEGER NOT NULL, -- ms; in flight: the visibility deadline
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (due_at)
  WHERE state IN ('queued', 'inflight');
