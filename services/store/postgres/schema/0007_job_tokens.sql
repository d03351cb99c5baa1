-- 6 -> 7: job deliveries bound to leases. Each delivery gets a random
-- token that its result must echo; the token of the delivery before is
-- kept, so that its late result still counts. due_at is on the
-- database's clock (every server agrees on it, store_pg_jobs.c);
-- claimed_by names the database session that claimed the delivery, so
-- that a server starting again makes due only the deliveries of
-- sessions that are gone, never those of another live server.
ALTER TABLE jobs ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN prev_token TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
