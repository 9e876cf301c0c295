// The values the storage driver keeps and hands back: an errand, its log entries, a pipeline,
// an event, a type's controls. Plain data; the rules over them live in src/lifecycle/.

export const STATUSES = [
  "blocked",
  "inactive",
  "active",
  "failed",
  "completed",
  "scheduled",
] as const;
export type Status = (typeof STATUSES)[number];

export type Severity = "INFO" | "WARNING" | "ERROR";

export interface LogEntry {
  severity: Severity;
  message: string;
  timestamp: number;
}

export interface Backoff {
  type: "fixed" | "exponential";
  delay: number;
}

/** An errand's options as stored: zero and false ones left out (v1's omitempty). */
export interface Options {
  ttl?: number;
  retries?: number;
  priority?: number;
  deleteOnCompleted?: boolean;
  heartbeat?: number;
  runAt?: number;
  delay?: number;
  backoff?: Backoff;
}

/** One errand as stored, without its logs (they are kept apart, appended one by one). */
export interface ErrandRecord {
  id: string;
  name: string;
  type: string;
  status: Status;
  priority: number;
  options: Options;
  /** JSON text of the object sent, or null. */
  data: string | null;
  /** JSON text of the results sent on completion, or null. */
  results: string | null;
  created: number;
  progress: number;
  attempts: number;
  started: number | null;
  failed: number | null;
  completed: number | null;
  /** When it last became completed or failed; null while it may still run. */
  finished: number | null;
  /** While active with options.ttl: when it is failed with "TTL Expired". */
  ttlDeadline: number | null;
  /** While active with options.heartbeat: when its worker must next be heard from. */
  heartbeatDeadline: number | null;
  /** While scheduled: when it comes due. Kept while blocked, for when it is unblocked. */
  runAt: number | null;
  pipeline: string | null;
}

export const PIPELINE_STATUSES = ["inactive", "active", "failed", "completed"] as const;
export type PipelineStatus = (typeof PIPELINE_STATUSES)[number];

export interface PipelineRecord {
  id: string;
  name: string;
  deleteOnCompleted: boolean;
  status: PipelineStatus;
  started: number;
  ended: number | null;
  /** When it settled, completed or failed with nothing left to run; null otherwise. */
  finished: number | null;
}

/** What a pipeline's status is computed from, each a yes or no about its errands. */
export interface PipelineProgress {
  anyFailed: boolean;
  anyUnfinished: boolean;
  anyStarted: boolean;
  /** Whether an errand of it is still to run: inactive, active or scheduled. */
  anyPending: boolean;
}

/** One edge by errand names: `target` depends on `dependsOn`. */
export interface Dependency {
  target: string;
  dependsOn: string;
}

export interface TypeControlsRecord {
  type: string;
  paused: boolean;
  concurrency: number | null;
  rateLimit: RateLimit | null;
}

/** At most `max` claims of a type start in any `perMs` ms. */
export interface RateLimit {
  max: number;
  perMs: number;
}

/** A rate limit that lets no claim of its type start now, and when the next one may (ms). */
export interface RateHold extends RateLimit {
  until: number;
}

export interface CountRow {
  type: string;
  status: string;
  count: number;
}

/** What one instance counted in one minute for one type, to add to the stored history. */
export interface MinuteDelta {
  /** The minute's start, ms since the epoch. */
  minute: number;
  type: string;
  completed: number;
  failed: number;
}

/** Inactive errands of a type as sampled. */
export interface WaitingCount {
  type: string;
  waiting: number;
}

/** One minute of the stored history, of one type or of all. */
export interface MinuteCounts {
  minute: number;
  completed: number;
  failed: number;
  /** Inactive errands as sampled in the minute; null when no sample of it was written. */
  waiting: number | null;
}

export interface EventRecord {
  id: number;
  event: string;
  /** The frame's data as stored: {"event":…,"errand":…}. */
  payload: string;
}

export const EVENT_NAMES = [
  "created",
  "updated",
  "processing",
  "completed",
  "failed",
  "retry",
  "unblocked",
  "deleted",
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** The errand a schedule creates at each tick, as a create's body gives it. */
export interface ErrandTemplate {
  name: string;
  type: string;
  options?: Options;
  data?: Record<string, unknown>;
}

/** What a schedule was given, kept as one JSON text: when it ticks and what it creates. */
export interface ScheduleSpec {
  /** A cron expression, read in `timezone`; or else `every`. */
  cron?: string;
  timezone?: string;
  /** Ms between ticks; or else `cron`. */
  every?: number;
  errand: ErrandTemplate;
  /** `skip`: no errand at a tick while the last one is unfinished. */
  overlap: "allow" | "skip";
}

export interface ScheduleRecord {
  name: string;
  spec: ScheduleSpec;
  paused: boolean;
  /** The tick it fires next; null while paused, or when its cron names no later time. */
  nextRunAt: number | null;
  /** The tick its last errand was created for. */
  lastRunAt: number | null;
  lastErrandId: string | null;
  created: number;
  updated: number;
}
