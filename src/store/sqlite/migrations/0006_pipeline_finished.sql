-- When a completed or failed pipeline was last changed with none of its errands left to run
-- (inactive, active or scheduled); null otherwise. clear deletes the pipelines finished before
-- its threshold, with their errands, on this index.
ALTER TABLE pipelines ADD COLUMN finished INTEGER;

UPDATE pipelines
   SET finished = (SELECT max(finished) FROM errands WHERE errands.pipeline = pipelines.id)
 WHERE status IN ('completed', 'failed')
   AND NOT EXISTS (SELECT 1 FROM errands
                    WHERE errands.pipeline = pipelines.id
                      AND status IN ('inactive', 'active', 'scheduled'));

CREATE INDEX pipelines_finished ON pipelines (finished) WHERE finished IS NOT NULL;

-- clear walks errands that are not in a pipeline only (those go with their pipeline): the
-- index of finished errands holds just those, so a batch reads no more than it deletes.
DROP INDEX errands_finished;
CREATE INDEX errands_finished ON errands (finished) WHERE finished IS NOT NULL AND pipeline IS NULL;
