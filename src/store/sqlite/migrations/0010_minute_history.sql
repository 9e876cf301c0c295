-- The history a dashboard charts: errands completed and failed, and errands waiting, per
-- minute (its start, ms since the epoch), kept 24 h. Written by the sweep, never by a scan.

-- Per type: a type's minutes are one range of the key.
CREATE TABLE minute_counts (
  type      TEXT NOT NULL,
  minute    INTEGER NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0,
  failed    INTEGER NOT NULL DEFAULT 0,
  -- Null until a sample of the minute has the type.
  waiting   INTEGER,
  PRIMARY KEY (type, minute)
) WITHOUT ROWID;
-- The oldest minutes, to prune.
CREATE INDEX minute_counts_minute ON minute_counts (minute);
-- The same over all types, one row a minute, so reading the whole queue costs the same however
-- many types there are; `waiting` null while no sample of the minute has been written.
CREATE TABLE minute_totals (
  minute    INTEGER PRIMARY KEY,
  completed INTEGER NOT NULL DEFAULT 0,
  failed    INTEGER NOT NULL DEFAULT 0,
  waiting   INTEGER
);
