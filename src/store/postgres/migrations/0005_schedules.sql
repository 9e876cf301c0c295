-- Schedules (recurring errands), and the ticks they have fired: one row per schedule and tick,
-- so a tick can never create two errands, whichever instance fires it.

CREATE TABLE schedules (
  -- Code point order ("C"), as SQLite's: the list pages on this key.
  name           text COLLATE "C" PRIMARY KEY,
  -- JSON: cron and timezone or every, the errand to create, overlap.
  spec           text NOT NULL,
  paused         boolean NOT NULL DEFAULT false,
  -- The next tick to fire; null while paused.
  next_run_at    bigint,
  last_run_at    bigint,
  last_errand_id text,
  created        bigint NOT NULL,
  updated        bigint NOT NULL
);
-- The sweep's due schedules, soonest first.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE schedule_ticks (
  schedule text COLLATE "C" NOT NULL,
  tick     bigint NOT NULL,
  -- When it fired, for pruning.
  created  bigint NOT NULL,
  PRIMARY KEY (schedule, tick)
);
CREATE INDEX schedule_ticks_created ON schedule_ticks (created);
