-- Lighter writes: every errand insert and status change used to run trigger statements and
-- update indexes that only rare reads need.

-- type_counts is now written by the server once per commit (src/store/counts.ts). Recounted
-- here once, so it starts exact.
DROP TRIGGER type_counts_insert;
DROP TRIGGER type_counts_delete;
DROP TRIGGER type_counts_update;
DELETE FROM type_counts;
INSERT INTO type_counts (type, status, count)
  SELECT type, status, count(*) FROM errands GROUP BY type, status;

-- The oldest waiting errand of a type is read from errands_claim, one seek per priority.
DROP INDEX errands_waiting;

-- Events are pruned from the oldest id on: ids grow with time, so no index on created.
DROP INDEX events_created;
