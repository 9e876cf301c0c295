// While a worker holds an errand: the lease (attempt) check, progress, log lines, heartbeats,
// and the deadlines that a claim starts and each sign of life pushes on.

import { Conflict } from "../errors.ts";
import type { ErrandRecord, LogEntry } from "../store/records.ts";
import { entry, type Transition } from "./transition.ts";

/** With `attempt`, the call is only for that attempt of an active errand (a lease). */
export function requireAttempt(errand: ErrandRecord, attempt: number | undefined): void {
  if (attempt === undefined) return;
  if (errand.status !== "active" || errand.attempts !== attempt) {
    throw new Conflict(
      "Attempt superseded",
      `errand ${errand.id} is ${errand.status} at attempt ${errand.attempts}, not active at attempt ${attempt}`,
    );
  }
}

export function requireActive(errand: ErrandRecord, action: string): void {
  if (errand.status !== "active") {
    throw new Conflict(
      "Errand must be in active state",
      `errand ${errand.id} is ${errand.status}: only an active errand can ${action}`,
    );
  }
}

/** The TTL and heartbeat deadlines of an errand that became active at `now`. */
export function deadlines(
  errand: ErrandRecord,
  now: number,
): Pick<ErrandRecord, "ttlDeadline" | "heartbeatDeadline"> {
  const { ttl = 0, heartbeat = 0 } = errand.options;
  return {
    // Any positive ttl is accepted (v1): one beyond the safe integers means never.
    ttlDeadline: ttl > 0 ? Math.min(now + ttl * 60_000, Number.MAX_SAFE_INTEGER) : null,
    heartbeatDeadline: heartbeat > 0 ? now + heartbeat * 1000 : null,
  };
}

/** A sign of life from the worker: its heartbeat deadline moves on, if it has one. */
function heardFrom(errand: ErrandRecord, now: number): ErrandRecord {
  const { heartbeat = 0 } = errand.options;
  return heartbeat > 0 ? { ...errand, heartbeatDeadline: now + heartbeat * 1000 } : errand;
}

export function progress(
  errand: ErrandRecord,
  value: number,
  now: number,
  attempt?: number,
): Transition {
  requireAttempt(errand, attempt);
  requireActive(errand, "update its progress");
  return { errand: { ...heardFrom(errand, now), progress: value }, event: "updated", log: null };
}

export function log(
  errand: ErrandRecord,
  line: Pick<LogEntry, "severity" | "message">,
  now: number,
  attempt?: number,
): Transition {
  requireAttempt(errand, attempt);
  requireActive(errand, "log to it");
  return {
    errand: heardFrom(errand, now),
    event: "updated",
    log: entry(line.severity, line.message, now),
  };
}

/** The worker is alive: no event, only a later heartbeat deadline. */
export function heartbeat(errand: ErrandRecord, now: number, attempt?: number): Transition {
  requireAttempt(errand, attempt);
  requireActive(errand, "send a heartbeat");
  return { errand: heardFrom(errand, now), event: null, log: null };
}
