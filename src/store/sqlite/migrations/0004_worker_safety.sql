-- Worker safety and scheduling: heartbeat deadlines, scheduled errands, idempotency keys,
-- per-type controls, and per-type counts kept by triggers so no count scans the store.

ALTER TABLE errands ADD COLUMN run_at INTEGER;
ALTER TABLE errands ADD COLUMN heartbeat_deadline INTEGER;

-- Scheduled errands coming due, and active errands whose worker went quiet.
CREATE INDEX errands_due ON errands (run_at) WHERE status = 'scheduled';
CREATE INDEX errands_heartbeat ON errands (heartbeat_deadline) WHERE heartbeat_deadline IS NOT NULL;
-- The oldest waiting errand of a type.
CREATE INDEX errands_waiting ON errands (type, created) WHERE status = 'inactive';

CREATE TABLE idempotency_keys (
  key       TEXT PRIMARY KEY,
  -- Which route and body the key was first used with.
  request   TEXT NOT NULL,
  response  TEXT NOT NULL,
  created   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);

CREATE TABLE types (
  type        TEXT PRIMARY KEY,
  paused      INTEGER NOT NULL DEFAULT 0,
  -- At most this many errands of the type active at once; null = no limit.
  concurrency INTEGER
) WITHOUT ROWID;

CREATE TABLE type_counts (
  type   TEXT NOT NULL,
  status TEXT NOT NULL,
  count  INTEGER NOT NULL,
  PRIMARY KEY (type, status)
) WITHOUT ROWID;

INSERT INTO type_counts (type, status, count)
  SELECT type, status, count(*) FROM errands GROUP BY type, status;

CREATE TRIGGER type_counts_insert AFTER INSERT ON errands BEGIN
  INSERT INTO type_counts (type, status, count) VALUES (new.type, new.status, 1)
    ON CONFLICT (type, status) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER type_counts_delete AFTER DELETE ON errands BEGIN
  UPDATE type_counts SET count = count - 1 WHERE type = old.type AND status = old.status;
END;

CREATE TRIGGER type_counts_update AFTER UPDATE OF status, type ON errands
  WHEN old.status IS NOT new.status OR old.type IS NOT new.type
BEGIN
  UPDATE type_counts SET count = count - 1 WHERE type = old.type AND status = old.status;
  INSERT INTO type_counts (type, status, count) VALUES (new.type, new.status, 1)
    ON CONFLICT (type, status) DO UPDATE SET count = count + 1;
END;

-- Queue depth now reads type_counts: the (status, type) index of 0003 is no longer needed,
-- and dropping it spares every status change an index update.
DROP INDEX IF EXISTS errands_depth;
