-- 9 -> 10: the dead jobs' list (issue 16, JobAdminService.ListJobs and
-- RetryDeadJobs) reads dead jobs in id order from this index, never the
-- whole outbox, where done jobs pile up. Partial: the hot path (insert,
-- claim, done) never touches it; only a job dying or retried does.
CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'dead';
