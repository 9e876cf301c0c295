// How an attempt ends: completed, failed (queued again while retries remain, after a backoff),
// expired by its TTL or heartbeat, retried by hand, or set by an operator's bulk update.

import { BadInput, Conflict } from "../errors.ts";
import type { ErrandRecord, Options, Status } from "../store/records.ts";
import { entry, type Transition } from "./transition.ts";
import { deadlines, requireAttempt } from "./working.ts";

function requireNotBlocked(errand: ErrandRecord, action: string): void {
  if (errand.status === "blocked") {
    throw new Conflict(
      `Cannot ${action} a blocked errand`,
      `errand ${errand.id} is blocked: it waits on its pipeline dependencies`,
    );
  }
}

/** Not running any more: no deadlines, no start time to wait for. */
const idle = { ttlDeadline: null, heartbeatDeadline: null, runAt: null } as const;

/** Completed with `results` (JSON text, or null to keep none); from any state but blocked. */
export function complete(
  errand: ErrandRecord,
  results: Record<string, unknown> | undefined,
  now: number,
  attempt?: number,
): Transition {
  requireAttempt(errand, attempt);
  requireNotBlocked(errand, "complete");
  return {
    errand: {
      ...errand,
      ...idle,
      status: "completed",
      completed: now,
      finished: now,
      progress: 100,
      results: results === undefined ? errand.results : JSON.stringify(results),
    },
    event: "completed",
    log: entry("INFO", "Completed!", now),
  };
}

const MAX_BACKOFF_MS = 3_600_000;

/** How long a re-queued errand waits after failed attempt `attempts`; 0 without a backoff. */
export function backoffMs(options: Options, attempts: number): number {
  const backoff = options.backoff;
  if (!backoff) return 0;
  if (backoff.type === "fixed") return backoff.delay;
  return Math.min(backoff.delay * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

/** The attempt failed: queued again (after its backoff) while retries remain, else failed. */
function failed(errand: ErrandRecord, reason: string, now: number): Transition {
  const retries = errand.options.retries ?? 0;
  const requeue = retries > 0 && errand.attempts <= retries;
  const wait = requeue ? backoffMs(errand.options, errand.attempts) : 0;
  const status: Status = !requeue ? "failed" : wait > 0 ? "scheduled" : "inactive";
  return {
    errand: {
      ...errand,
      ...idle,
      status,
      failed: now,
      progress: 0,
      runAt: wait > 0 ? now + wait : null,
      finished: status === "failed" ? now : null,
    },
    event: "failed",
    log: entry("ERROR", reason, now),
  };
}

/** A worker reports failure; from any state but blocked. */
export function fail(
  errand: ErrandRecord,
  reason: string,
  now: number,
  attempt?: number,
): Transition {
  requireAttempt(errand, attempt);
  requireNotBlocked(errand, "fail");
  return failed(errand, reason, now);
}

export type ExpiryReason = "TTL Expired" | "Heartbeat timeout";

/** Whether the errand's TTL or heartbeat deadline has passed, and which. */
export function expiry(errand: ErrandRecord, now: number): ExpiryReason | null {
  if (errand.status !== "active") return null;
  if (errand.ttlDeadline !== null && errand.ttlDeadline <= now) return "TTL Expired";
  if (errand.heartbeatDeadline !== null && errand.heartbeatDeadline <= now) {
    return "Heartbeat timeout";
  }
  return null;
}

/** The active errand ran past a deadline: failed under the same retry rule as a worker's. */
export function expire(errand: ErrandRecord, reason: ExpiryReason, now: number): Transition {
  return failed(errand, reason, now);
}

/** Queued again by hand; only an active, failed or completed errand (the others are queued). */
export function retry(errand: ErrandRecord, now: number): Transition {
  if (
    errand.status === "inactive" ||
    errand.status === "blocked" ||
    errand.status === "scheduled"
  ) {
    throw new Conflict(
      "Cannot retry errand",
      `errand ${errand.id} is ${errand.status}: only an active, failed or completed errand can be retried`,
    );
  }
  return {
    errand: { ...errand, ...idle, status: "inactive", progress: 0, finished: null },
    event: "retry",
    log: entry("INFO", "Retrying!", now),
  };
}

/** Refuses what a bulk update cannot do before anything is read: it has no time to give. */
export function checkBulkStatus(status: Status): void {
  if (status === "scheduled") {
    throw new BadInput("Invalid request", "body.status: scheduled needs a time; use retry instead");
  }
}

/** An operator sets the status by hand (bulk update); completed and failed say when. */
export function setStatus(errand: ErrandRecord, status: Status, now: number): Transition {
  checkBulkStatus(status);
  const final = status === "completed" || status === "failed";
  const active = status === "active";
  return {
    errand: {
      ...errand,
      ...idle,
      status,
      finished: final ? now : null,
      completed: status === "completed" ? now : errand.completed,
      failed: status === "failed" ? now : errand.failed,
      started: active ? (errand.started ?? now) : errand.started,
      ...(active ? deadlines(errand, now) : {}),
    },
    event: "updated",
    log: null,
  };
}
