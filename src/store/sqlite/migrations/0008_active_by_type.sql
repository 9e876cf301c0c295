-- The errands active per type, so a claim checks a type's concurrency limit against the
-- database itself: a count over this index costs at most the limit's worth of entries.
CREATE INDEX errands_active ON errands (type) WHERE status = 'active';
