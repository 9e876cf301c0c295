-- Pipelines: dependency graphs of errands. Edges are stored by errand id, both directions indexed.

CREATE TABLE pipelines (
  id                  TEXT PRIMARY KEY,
  name                TEXT NOT NULL,
  delete_on_completed INTEGER NOT NULL DEFAULT 0,
  -- inactive, active, failed or completed; recomputed after every change of one of its errands.
  status              TEXT NOT NULL,
  started             INTEGER NOT NULL,
  -- Set once, when the pipeline first completes.
  ended               INTEGER
);
CREATE INDEX pipelines_status ON pipelines (status, id);

-- "target depends on depends_on"; position keeps the order the client sent the edges in.
CREATE TABLE pipeline_dependencies (
  pipeline   TEXT NOT NULL,
  position   INTEGER NOT NULL,
  target     TEXT NOT NULL,
  depends_on TEXT NOT NULL,
  PRIMARY KEY (pipeline, position)
) WITHOUT ROWID;
-- The dependencies of an errand (its results, whether it may run)...
CREATE UNIQUE INDEX pipeline_dependencies_target ON pipeline_dependencies (target, depends_on);
-- ...and its dependents (what its completion may unblock).
CREATE INDEX pipeline_dependencies_depends_on ON pipeline_dependencies (depends_on, target);

-- A pipeline's errands by status: its status is a few seeks on this index, never a scan.
CREATE INDEX errands_pipeline ON errands (pipeline, status, started) WHERE pipeline IS NOT NULL;
