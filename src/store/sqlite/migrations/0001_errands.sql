-- Errands, their logs, and the durable event log.

CREATE TABLE errands (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  type       TEXT NOT NULL,
  status     TEXT NOT NULL,
  -- options.priority, copied out of options for the claim index.
  priority   INTEGER NOT NULL DEFAULT 0,
  options    TEXT NOT NULL DEFAULT '{}',
  data       TEXT,
  results    TEXT,
  created    INTEGER NOT NULL,
  progress   REAL NOT NULL DEFAULT 0,
  attempts   INTEGER NOT NULL DEFAULT 0,
  started    INTEGER,
  failed     INTEGER,
  completed  INTEGER,
  -- When the errand last reached completed or failed; cleared when it leaves them.
  finished   INTEGER,
  -- started + ttl while active with a ttl; null otherwise.
  ttl_deadline INTEGER,
  pipeline   TEXT
);

-- The claim: the highest priority, then the oldest, among one type's inactive errands.
CREATE INDEX errands_claim ON errands (type, priority DESC, created, id) WHERE status = 'inactive';
CREATE INDEX errands_ttl ON errands (ttl_deadline) WHERE ttl_deadline IS NOT NULL;
CREATE INDEX errands_status ON errands (status, id);
CREATE INDEX errands_type ON errands (type, id);
CREATE INDEX errands_finished ON errands (finished) WHERE finished IS NOT NULL;

CREATE TABLE errand_logs (
  id        INTEGER PRIMARY KEY,
  errand_id TEXT NOT NULL,
  severity  TEXT NOT NULL,
  message   TEXT NOT NULL,
  timestamp INTEGER NOT NULL
);
CREATE INDEX errand_logs_errand ON errand_logs (errand_id, id);

CREATE TABLE events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  event      TEXT NOT NULL,
  created    INTEGER NOT NULL,
  -- The SSE frame's data: {"event":…,"errand":…}.
  payload    TEXT NOT NULL
);
CREATE INDEX events_created ON events (created);
