-- Queue depth by type and status (metrics): a scan of this small covering index instead of
-- the whole table, which on a million errands took seconds of the event loop.

CREATE INDEX errands_depth ON errands (status, type);
