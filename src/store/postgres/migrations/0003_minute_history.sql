-- The history a dashboard charts: errands completed and failed, and errands waiting, per
-- minute (its start, ms since the epoch), kept 24 h. Each instance adds its own counts, so the
-- sums are right however many instances write.

-- Per type: a type's minutes are one range of the key.
CREATE TABLE minute_counts (
  type      text NOT NULL,
  minute    bigint NOT NULL,
  completed bigint NOT NULL DEFAULT 0,
  failed    bigint NOT NULL DEFAULT 0,
  -- Null until a sample of the minute has the type.
  waiting   bigint,
  PRIMARY KEY (type, minute)
);
-- The oldest minutes, to prune.
CREATE INDEX minute_counts_minute ON minute_counts (minute);
-- The same over all types, one row a minute, so reading the whole queue costs the same however
-- many types there are; `waiting` null while no sample of the minute has been written.
CREATE TABLE minute_totals (
  minute    bigint PRIMARY KEY,
  completed bigint NOT NULL DEFAULT 0,
  failed    bigint NOT NULL DEFAULT 0,
  waiting   bigint
);
