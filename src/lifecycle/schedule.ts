// Errands that wait: a scheduled one coming due, and a blocked one whose dependencies are done.

import type { ErrandRecord } from "../store/records.ts";
import { entry, type Transition } from "./transition.ts";

/** Whether a scheduled errand's time has come. */
export function isDue(errand: ErrandRecord, now: number): boolean {
  return errand.status === "scheduled" && errand.runAt !== null && errand.runAt <= now;
}

/** A scheduled errand come due: queued. */
export function promote(errand: ErrandRecord): Transition {
  return { errand: { ...errand, status: "inactive", runAt: null }, event: "updated", log: null };
}

/** Its dependencies have all completed: queued, or scheduled while its start time is ahead. */
export function unblock(errand: ErrandRecord, now: number): Transition {
  const later = errand.runAt !== null && errand.runAt > now;
  return {
    errand: {
      ...errand,
      status: later ? "scheduled" : "inactive",
      runAt: later ? errand.runAt : null,
    },
    event: "unblocked",
    log: entry("INFO", "errand unblocked", now),
  };
}
