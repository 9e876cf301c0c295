-- The whole schema of the PostgreSQL engine: errands and their logs, pipelines, the event log,
-- per-type controls and counts, idempotency keys, and the health check's row.

CREATE TABLE errands (
  id                 text PRIMARY KEY,
  name               text NOT NULL,
  type               text NOT NULL,
  status             text NOT NULL,
  priority           bigint NOT NULL DEFAULT 0,
  options            text NOT NULL DEFAULT '{}',
  data               text,
  results            text,
  created            bigint NOT NULL,
  progress           double precision NOT NULL DEFAULT 0,
  attempts           integer NOT NULL DEFAULT 0,
  started            bigint,
  failed             bigint,
  completed          bigint,
  finished           bigint,
  ttl_deadline       bigint,
  heartbeat_deadline bigint,
  run_at             bigint,
  pipeline           text
);
-- The claim: the highest priority, then the oldest, among one type's inactive errands.
CREATE INDEX errands_claim ON errands (type, priority DESC, created, id) WHERE status = 'inactive';
-- A type's active errands, counted against its concurrency limit.
CREATE INDEX errands_active ON errands (type) WHERE status = 'active';
CREATE INDEX errands_status ON errands (status, id);
CREATE INDEX errands_type ON errands (type, id);
CREATE INDEX errands_finished ON errands (finished) WHERE finished IS NOT NULL AND pipeline IS NULL;
CREATE INDEX errands_ttl ON errands (ttl_deadline) WHERE ttl_deadline IS NOT NULL;
CREATE INDEX errands_heartbeat ON errands (heartbeat_deadline) WHERE heartbeat_deadline IS NOT NULL;
CREATE INDEX errands_due ON errands (run_at) WHERE status = 'scheduled';
CREATE INDEX errands_pipeline ON errands (pipeline, status, started) WHERE pipeline IS NOT NULL;

CREATE TABLE errand_logs (
  id        bigserial PRIMARY KEY,
  errand_id text NOT NULL,
  severity  text NOT NULL,
  message   text NOT NULL,
  timestamp bigint NOT NULL
);
CREATE INDEX errand_logs_errand ON errand_logs (errand_id, id);

CREATE TABLE pipelines (
  id                  text PRIMARY KEY,
  name                text NOT NULL,
  delete_on_completed boolean NOT NULL DEFAULT false,
  status              text NOT NULL,
  started             bigint NOT NULL,
  ended               bigint,
  finished            bigint
);
CREATE INDEX pipelines_status ON pipelines (status, id);
CREATE INDEX pipelines_finished ON pipelines (finished) WHERE finished IS NOT NULL;

CREATE TABLE pipeline_dependencies (
  pipeline   text NOT NULL,
  position   integer NOT NULL,
  target     text NOT NULL,
  depends_on text NOT NULL,
  PRIMARY KEY (pipeline, position)
);
CREATE UNIQUE INDEX pipeline_dependencies_target ON pipeline_dependencies (target, depends_on);
CREATE INDEX pipeline_dependencies_depends_on ON pipeline_dependencies (depends_on, target);

-- The event log. A writer inserts its events with no place (id null); once they are committed,
-- the sequencer gives them the next places, in one statement that sees committed rows only,
-- so a reader that has read up to id n never meets a later event with an id at or below n.
CREATE TABLE events (
  seq     bigserial PRIMARY KEY,
  id      bigint UNIQUE,
  event   text NOT NULL,
  created bigint NOT NULL,
  payload text NOT NULL
);
CREATE INDEX events_unplaced ON events (seq) WHERE id IS NULL;
-- The newest place handed out, kept when every event is pruned.
CREATE TABLE event_head (
  one    integer PRIMARY KEY CHECK (one = 1),
  newest bigint NOT NULL
);
INSERT INTO event_head (one, newest) VALUES (1, 0);

CREATE TABLE idempotency_keys (
  key      text PRIMARY KEY,
  request  text NOT NULL,
  response text NOT NULL,
  created  bigint NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);

CREATE TABLE types (
  type        text PRIMARY KEY,
  paused      boolean NOT NULL DEFAULT false,
  concurrency integer
);

-- Errands per type and status: each write appends its changes to the deltas (no row every
-- writer of a type would wait on), and housekeeping folds them into the counts.
CREATE TABLE type_counts (
  type   text NOT NULL,
  status text NOT NULL,
  count  bigint NOT NULL,
  PRIMARY KEY (type, status)
);
CREATE TABLE type_count_deltas (
  id     bigserial PRIMARY KEY,
  type   text NOT NULL,
  status text NOT NULL,
  delta  integer NOT NULL
);

CREATE TABLE write_probe (
  id integer PRIMARY KEY CHECK (id = 1),
  at bigint NOT NULL
);
