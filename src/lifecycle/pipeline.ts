// A pipeline's status, from what its errands are doing.

import type { PipelineProgress, PipelineRecord, PipelineStatus } from "../store/records.ts";

/**
 * failed if any errand failed; else completed when all have; else active once one has
 * started; else inactive. Settled (completed or failed with nothing left to run) is when
 * clear may take it.
 */
export function pipelineStatus(
  pipeline: PipelineRecord,
  progress: PipelineProgress,
  now: number,
): { pipeline: PipelineRecord; changed: boolean; remove: boolean } {
  const status: PipelineStatus = progress.anyFailed
    ? "failed"
    : !progress.anyUnfinished
      ? "completed"
      : progress.anyStarted
        ? "active"
        : "inactive";
  const completed = status === "completed";
  const settled = (completed || status === "failed") && !progress.anyPending;
  const next: PipelineRecord = {
    ...pipeline,
    status,
    ended: pipeline.ended ?? (completed ? now : null),
    // When it last changed while settled: clear goes by how long it has been left alone.
    finished: settled ? now : null,
  };
  const changed =
    next.status !== pipeline.status ||
    next.ended !== pipeline.ended ||
    next.finished !== pipeline.finished;
  return { pipeline: next, changed, remove: completed && pipeline.deleteOnCompleted };
}
