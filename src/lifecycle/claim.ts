// A worker takes an errand, and gives it back when nobody received it.

import type { ErrandRecord } from "../store/records.ts";
import { entry, type Transition } from "./transition.ts";
import { deadlines } from "./working.ts";

/** Whether the errand can be claimed now: queued, not scheduled, blocked or running. */
export function claimable(errand: ErrandRecord): boolean {
  return errand.status === "inactive";
}

/** The claimed errand: active at its next attempt, its deadlines running from `now`. */
export function claim(errand: ErrandRecord, now: number): Transition {
  return {
    errand: {
      ...errand,
      status: "active",
      started: now,
      attempts: errand.attempts + 1,
      progress: 0,
      finished: null,
      runAt: null,
      ...deadlines(errand, now),
    },
    event: "processing",
    log: entry("INFO", "Started!", now),
  };
}

/**
 * Attempt `attempt` was claimed for a client that went away before it received it: back in
 * the queue as if never claimed, or null when the errand has moved on since.
 */
export function release(errand: ErrandRecord, attempt: number, now: number): Transition | null {
  // Attempt 0 was never claimed (a bulk update can make an errand active without a claim).
  if (errand.status !== "active" || errand.attempts !== attempt || attempt < 1) return null;
  const attempts = errand.attempts - 1;
  return {
    errand: {
      ...errand,
      status: "inactive",
      attempts,
      progress: 0,
      // Never started if this was its first attempt; else it keeps a start (a pipeline that
      // has run stays active).
      started: attempts === 0 ? null : errand.started,
      ttlDeadline: null,
      heartbeatDeadline: null,
    },
    event: "updated",
    log: entry("INFO", "Released: the claiming worker went away", now),
  };
}
