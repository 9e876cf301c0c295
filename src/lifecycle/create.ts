// A new errand: its options as kept, when it may first run, and the status that follows.

import { BadInput } from "../errors.ts";
import type { ErrandRecord, Options } from "../store/records.ts";

/** Options the queue knows; others are ignored as v1 did, never stored unvalidated. */
const OPTION_KEYS: Array<keyof Options> = [
  "ttl",
  "retries",
  "priority",
  "deleteOnCompleted",
  "heartbeat",
  "runAt",
  "delay",
  "backoff",
];

/** Keeps the known options and drops zero and false ones, as v1's omitempty did. */
export function normalizeOptions(options: Options): Options {
  const kept: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) {
    const value = options[key];
    if (value !== 0 && value !== false && value !== undefined && value !== null) kept[key] = value;
  }
  return kept as Options;
}

/** When an errand may first run: options.runAt, or creation + options.delay, or now. */
export function startTime(options: Options, now: number): number {
  if (options.runAt !== undefined && options.delay !== undefined) {
    throw new BadInput("Invalid request", "body.options: give runAt or delay, not both");
  }
  return options.runAt ?? now + (options.delay ?? 0);
}

export interface NewErrand {
  name: string;
  type: string;
  options?: Options;
  data?: Record<string, unknown>;
}

/**
 * The errand as created at `now`: `scheduled` while its start time is ahead, else `inactive`;
 * `blocked` while it waits on pipeline dependencies (keeping its start time for later).
 */
export function newErrand(
  spec: NewErrand,
  init: { id: string; now: number; pipeline?: string; blocked?: boolean },
): ErrandRecord {
  const options = normalizeOptions(spec.options ?? {});
  const runAt = startTime(options, init.now);
  const later = runAt > init.now;
  return {
    id: init.id,
    name: spec.name,
    type: spec.type,
    status: init.blocked ? "blocked" : later ? "scheduled" : "inactive",
    priority: options.priority ?? 0,
    options,
    data: spec.data === undefined ? null : JSON.stringify(spec.data),
    results: null,
    created: init.now,
    progress: 0,
    attempts: 0,
    started: null,
    failed: null,
    completed: null,
    finished: null,
    ttlDeadline: null,
    heartbeatDeadline: null,
    runAt: later ? runAt : null,
    pipeline: init.pipeline ?? null,
  };
}
