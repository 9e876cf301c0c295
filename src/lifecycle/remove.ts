// Whether an errand may be deleted on its own: one of a pipeline goes only with its pipeline.

import { Conflict } from "../errors.ts";
import type { ErrandRecord } from "../store/records.ts";

/** The errand a delete takes; refused (409) when it belongs to a pipeline. */
export function removal(errand: ErrandRecord): ErrandRecord {
  if (errand.pipeline !== null) {
    throw new Conflict(
      "Cannot delete an errand of a pipeline",
      `errand ${errand.id} belongs to pipeline ${errand.pipeline}: delete the pipeline instead`,
    );
  }
  return errand;
}
