-- 6 -> 7: job deliveries bound to leases. Each delivery gets a random
-- token that its result must echo (a result for a delivery the server
-- never made is ignored); the token of the delivery before is kept, so
-- that its late result still counts. due_at is from now on the server's
-- monotonic clock, rebased at every start (jobs_resume).
ALTER TABLE jobs ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN prev_token TEXT NOT NULL DEFAULT '';
