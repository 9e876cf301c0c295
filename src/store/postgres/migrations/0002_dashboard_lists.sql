-- The lists a dashboard reads: scheduled errands soonest first, and errands by name prefix.

-- errands_due again, on (run_at, id): the sweep's due errands read it as before, and the
-- scheduled list pages on it in (run_at, id) order. One index, not two, for every write.
DROP INDEX IF EXISTS errands_due;
CREATE INDEX errands_due ON errands (run_at, id) WHERE status = 'scheduled';
-- Errands whose name starts with a prefix: a range of this index in code point order ("C"),
-- whatever the database's collation.
CREATE INDEX errands_name ON errands ((name COLLATE "C"), id);
