-- Schedules (recurring errands), and the ticks they have fired: one row per schedule and tick,
-- so a tick can never create two errands.

CREATE TABLE schedules (
  name           TEXT PRIMARY KEY,
  -- JSON: cron and timezone or every, the errand to create, overlap.
  spec           TEXT NOT NULL,
  paused         INTEGER NOT NULL DEFAULT 0,
  -- The next tick to fire; null while paused.
  next_run_at    INTEGER,
  last_run_at    INTEGER,
  last_errand_id TEXT,
  created        INTEGER NOT NULL,
  updated        INTEGER NOT NULL
) WITHOUT ROWID;
-- The sweep's due schedules, soonest first.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE schedule_ticks (
  schedule TEXT NOT NULL,
  tick     INTEGER NOT NULL,
  -- When it fired, for pruning.
  created  INTEGER NOT NULL,
  PRIMARY KEY (schedule, tick)
) WITHOUT ROWID;
CREATE INDEX schedule_ticks_created ON schedule_ticks (created);
