// The errand lifecycle: create, claim, progress, log, fail, complete, retry, delete, expire.
// Plain TypeScript over the store; knows nothing of HTTP.

import type { Clock } from "../clock.ts";
import { BadInput, Conflict, NotFound } from "../errors.ts";
import type { EventBus, EventName } from "../events/bus.ts";
import { pageOf, pagesOf } from "../paging.ts";
import type { Store, Tx } from "../store/db.ts";
import {
  type ErrandReads,
  type ErrandRow,
  type ErrandSql,
  type ErrandWrites,
  newErrandRow,
} from "../store/errands.ts";
import type { IdempotencyKeys } from "./idempotency.ts";
import {
  type Errand,
  ErrandOptions,
  type ErrandSpec,
  type ListKey,
  type Log,
  MAX_LOG_MESSAGE,
  type Status,
} from "./model.ts";

export interface ErrandServiceDeps {
  store: Store;
  errandSql: ErrandSql;
  clock: Clock;
  bus: EventBus;
  maxLogs: number;
  /** Told of each TTL or heartbeat expiry, for the operator's log. */
  onExpired?: (errand: Errand, reason: string) => void;
  /** Pipelines: told of every status change of an errand of a pipeline (src/pipelines/). */
  pipelines?: PipelineHooks;
  /** Idempotency-Key on creates. */
  keys: IdempotencyKeys;
}

/** What the errand lifecycle asks of pipelines, inside the same write transaction. */
export interface PipelineHooks {
  /** After any change of the status of an errand that belongs to a pipeline. */
  onErrandChanged(tx: Tx, row: ErrandRow): void;
  /** The results of the errand's dependencies by name, or null when it has none. */
  dependencyResults(id: string, tx?: Tx): Record<string, Record<string, unknown>> | null;
  /**
   * Deletes pipelines settled before `threshold`, whole, until about `limit` errands have gone;
   * answers them (clear).
   */
  clearFinished(tx: Tx, threshold: number, limit: number): Errand[];
}

export type Filter = { key: ListKey; value: string } | null;

export type BulkChange = { status: Status } | { delete: true };

const SWEEP_BATCH = 500;
/** About how many errands one write of clear deletes (a pipeline goes whole). */
const CLEAR_BATCH = 1000;

export class ErrandService {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly bus: EventBus;
  private readonly maxLogs: number;
  private readonly onExpired: (errand: Errand, reason: string) => void;
  private readonly pipelines: PipelineHooks | undefined;
  private readonly keys: IdempotencyKeys;
  private readonly w: ErrandWrites;
  private readonly r: ErrandReads;

  constructor(deps: ErrandServiceDeps) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.bus = deps.bus;
    this.maxLogs = deps.maxLogs;
    this.onExpired = deps.onExpired ?? (() => {});
    this.pipelines = deps.pipelines;
    this.keys = deps.keys;
    this.w = deps.errandSql.writes;
    this.r = deps.errandSql.reads;
  }

  /** Creates an errand; with an idempotency key, a repeat answers the first result. */
  create(spec: ErrandSpec, key?: string): Promise<Errand> {
    return this.store.write((tx) =>
      this.keys.run(key, "POST /v1/errands", spec, () => this.insert(tx, spec)),
    );
  }

  get(id: string): Errand {
    const row = this.r.get.get(id);
    if (!row) throw notFound(id);
    return this.withDependencyResults(toErrand(row, this.r));
  }

  /** Pages of errands in creation order, read from committed data. */
  *pages(filter: Filter, after = ""): Generator<Errand[]> {
    for (const rows of pagesOf((from, n) => this.r.page(filter, from, n), after)) {
      yield rows.map((row) => toErrand(row, this.r));
    }
  }

  /** One page and the cursor of the next, or null when this is the last. */
  page(filter: Filter, after: string, limit: number): { errands: Errand[]; next: string | null } {
    const { rows, next } = pageOf((from, n) => this.r.page(filter, from, n), after, limit);
    return { errands: rows.map((row) => toErrand(row, this.r)), next };
  }

  /** Claims the next inactive errand of `type`, or answers null when none waits. */
  claim(type: string): Promise<Errand | null> {
    return this.store.write((tx) => this.claimIn(tx, type));
  }

  /** Claims inside the open write group: null at once when nothing can be claimed. */
  claimNow(type: string): Promise<Errand> | null {
    let found = false;
    let ran = false;
    const claimed = this.store.write((tx) => {
      ran = true;
      const errand = this.claimIn(tx, type);
      found = errand !== null;
      return errand;
    });
    if (ran && !found) {
      claimed.catch(() => {});
      return null;
    }
    return claimed as Promise<Errand>;
  }

  /** Puts an errand back in the queue when attempt `attempt` of it has had no worker. */
  release(id: string, attempt: number): Promise<Errand | null> {
    return this.store.write((tx) => {
      const row = this.w.row(id);
      if (row?.status !== "active" || row.attempts !== attempt) return null;
      const log = this.appendLog(id, "INFO", "Released: the claiming worker went away");
      row.status = "inactive";
      row.attempts -= 1;
      row.progress = 0;
      // Never started if this was its first attempt; else it keeps a start (a pipeline that
      // has run stays active).
      if (row.attempts === 0) row.started = null;
      row.ttl_deadline = null;
      this.save(row);
      this.w.uncountAttempt.run(id);
      const errand = this.emit(tx, "updated", row, log);
      this.changed(tx, row);
      return errand;
    });
  }

  progress(id: string, progress: number, attempt?: number): Promise<Errand> {
    return this.store.write((tx) => {
      const row = this.load(id);
      requireAttempt(row, attempt);
      requireActive(row, "update its progress");
      row.progress = progress;
      this.heardFrom(row);
      this.save(row);
      return this.emit(tx, "updated", row);
    });
  }

  log(id: string, severity: Log["severity"], message: string, attempt?: number): Promise<Errand> {
    return this.store.write((tx) => {
      const row = this.load(id);
      requireAttempt(row, attempt);
      requireActive(row, "log to it");
      const log = this.appendLog(id, severity, message);
      this.heardFrom(row);
      return this.emit(tx, "updated", row, log);
    });
  }

  /** The worker of an active errand is alive: pushes its heartbeat deadline on. No event. */
  heartbeat(id: string, attempt?: number): Promise<Errand> {
    return this.store.write(() => {
      const row = this.load(id);
      requireAttempt(row, attempt);
      requireActive(row, "send a heartbeat");
      this.heardFrom(row);
      return toErrand(row, this.w);
    });
  }

  fail(id: string, reason: string, attempt?: number): Promise<Errand> {
    return this.store.write((tx) => {
      const row = this.load(id);
      requireAttempt(row, attempt);
      requireNotBlocked(row, "fail");
      return this.failIn(tx, row, reason);
    });
  }

  /** Creates all the errands or none, in one transaction. */
  createMany(specs: ErrandSpec[], key?: string): Promise<Errand[]> {
    return this.store.write((tx) =>
      this.keys.run(key, "POST /v1/errands/batch", specs, () =>
        specs.map((spec) => this.insert(tx, spec)),
      ),
    );
  }

  /** Completes the errand and, in the same transaction, claims the next one of its type. */
  completeAndClaim(
    id: string,
    results: Record<string, unknown> | undefined,
    attempt?: number,
  ): Promise<{ completed: Errand; next: Errand | null }> {
    return this.store.write((tx) => {
      const completed = this.completeIn(tx, id, results, attempt);
      return { completed, next: this.claimIn(tx, completed.type) };
    });
  }

  complete(
    id: string,
    results: Record<string, unknown> | undefined,
    attempt?: number,
  ): Promise<Errand> {
    return this.store.write((tx) => this.completeIn(tx, id, results, attempt));
  }

  private completeIn(
    tx: Tx,
    id: string,
    results: Record<string, unknown> | undefined,
    attempt: number | undefined,
  ): Errand {
    const row = this.load(id);
    requireAttempt(row, attempt);
    requireNotBlocked(row, "complete");
    const now = this.clock.now();
    const log = this.appendLog(id, "INFO", "Completed!");
    row.status = "completed";
    row.completed = now;
    row.finished = now;
    row.progress = 100;
    row.ttl_deadline = null;
    if (results !== undefined) row.results = JSON.stringify(results);
    this.save(row);
    const errand = this.emit(tx, "completed", row, log);
    this.changed(tx, row);
    // An errand of a pipeline stays while its pipeline does: its results feed its dependents.
    if (errand.options.deleteOnCompleted && row.pipeline === null) this.removeIn(tx, row);
    return errand;
  }

  retry(id: string): Promise<Errand> {
    return this.store.write((tx) => {
      const row = this.load(id);
      if (row.status === "inactive" || row.status === "blocked" || row.status === "scheduled") {
        throw new Conflict(
          "Cannot retry errand",
          `errand ${id} is ${row.status}: only an active, failed or completed errand can be retried`,
        );
      }
      const log = this.appendLog(id, "INFO", "Retrying!");
      row.status = "inactive";
      row.progress = 0;
      row.finished = null;
      row.ttl_deadline = null;
      this.save(row);
      const errand = this.emit(tx, "retry", row, log);
      this.changed(tx, row);
      return errand;
    });
  }

  /** Deletes the errand; an unknown id is not an error (v1). */
  remove(id: string): Promise<void> {
    return this.store.write((tx) => {
      const row = this.w.row(id);
      if (!row) return;
      if (row.pipeline !== null) {
        throw new Conflict(
          "Cannot delete an errand of a pipeline",
          `errand ${id} belongs to pipeline ${row.pipeline}: delete the pipeline instead`,
        );
      }
      this.removeIn(tx, row);
    });
  }

  /** Sets every matching errand to a status, or deletes them all; returns how many. */
  updateWhere(filter: { key: ListKey; value: string }, change: BulkChange): Promise<number> {
    // A scheduled errand needs a time to come due; a bulk update has none to give it.
    if ("status" in change && change.status === "scheduled") {
      return Promise.reject(
        new BadInput("Invalid request", "body.status: scheduled needs a time; use retry instead"),
      );
    }
    return this.store.write((tx) => {
      const ids = this.w.idsWhere(filter.key, filter.value);
      let count = 0;
      for (const id of ids) {
        const row = this.w.row(id);
        if (!row) continue;
        if ("delete" in change) {
          // Pipeline errands go with their pipeline.
          if (row.pipeline !== null) continue;
          this.removeIn(tx, row);
        } else {
          this.setStatus(row, change.status);
          this.save(row);
          this.emit(tx, "updated", row);
          this.changed(tx, row);
        }
        count++;
      }
      return count;
    });
  }

  /**
   * Deletes completed and failed errands that finished more than `ageMs` ago, and settled
   * pipelines with their errands, a batch of about CLEAR_BATCH errands per write, so other
   * requests are served in between and memory stays flat. The first batch is done before this
   * answers; each batch is yielded once it is on disk.
   */
  async clear(ageMs: number): Promise<AsyncIterator<Errand[]>> {
    if (ageMs < 0) throw new BadInput("Invalid duration", "the duration must not be negative");
    const threshold = this.clock.now() - ageMs;
    const batch = () =>
      this.store.write((tx) => {
        const removed: Errand[] = [];
        for (const { id } of this.w.finishedBefore.all(threshold, CLEAR_BATCH)) {
          const row = this.w.row(id);
          if (row) removed.push(this.removeIn(tx, row));
        }
        // Errands of a pipeline go with their pipeline, once all of it is done.
        if (removed.length < CLEAR_BATCH && this.pipelines) {
          for (const errand of this.pipelines.clearFinished(tx, threshold, CLEAR_BATCH)) {
            removed.push(errand);
          }
        }
        return removed;
      });
    const store = this.store;
    // The batch done and not yet handed out; `more` until a batch comes back empty or fails.
    let pending: Errand[] | null = await batch();
    let more = pending.length > 0;
    return {
      async next() {
        if (pending === null && more) {
          try {
            pending = await batch();
          } catch (error) {
            more = false; // a failed batch ends the clear: the answer is cut short
            throw error;
          }
          more = pending.length > 0;
        }
        const value = pending ?? [];
        pending = null;
        return value.length > 0 ? { done: false, value } : { done: true, value: undefined };
      },
      // The client went away mid-answer: the rest is deleted all the same, unless the server
      // is shutting down (a later clear finishes it).
      async return() {
        while (more && !store.isClosing) more = (await batch()).length > 0;
        more = false;
        return { done: true, value: undefined };
      },
    };
  }

  /** Fails every active errand past its TTL (re-queued when retries remain); returns how many. */
  expireOverdue(): Promise<number> {
    return this.failEach(this.w.overdue, "TTL Expired");
  }

  /** Fails every active errand whose worker has gone quiet past its heartbeat. */
  expireSilent(): Promise<number> {
    return this.failEach(this.w.silent, "Heartbeat timeout");
  }

  /** Queues every scheduled errand that has come due (event `updated`); returns how many. */
  async promoteDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const promoted = await this.store.write((tx) => {
        const ids = this.w.due.all(this.clock.now(), SWEEP_BATCH);
        for (const { id } of ids) {
          const row = this.load(id);
          row.status = "inactive";
          this.save(row);
          this.emit(tx, "updated", row);
          this.changed(tx, row);
        }
        return ids.length;
      });
      total += promoted;
      if (promoted < SWEEP_BATCH) return total;
    }
  }

  private async failEach(
    query: ErrandWrites["overdue"],
    reason: "TTL Expired" | "Heartbeat timeout",
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.store.write((tx) => {
        const ids = query.all(this.clock.now(), SWEEP_BATCH);
        const errands: Errand[] = [];
        for (const { id } of ids) {
          const row = this.w.row(id);
          if (row) errands.push(this.failIn(tx, row, reason));
        }
        return errands;
      });
      for (const errand of expired) this.onExpired(errand, reason);
      total += expired.length;
      if (expired.length < SWEEP_BATCH) return total;
    }
  }

  // --- inside a write transaction ---

  private insert(tx: Tx, spec: ErrandSpec): Errand {
    const id = Bun.randomUUIDv7();
    const options = normalizeOptions(spec.options ?? {});
    const data = spec.data === undefined ? null : JSON.stringify(spec.data);
    const now = this.clock.now();
    const runAt = startTime(options, now);
    const row = newErrandRow({
      id,
      name: spec.name,
      type: spec.type,
      status: runAt > now ? "scheduled" : "inactive",
      priority: options.priority ?? 0,
      options: JSON.stringify(options),
      data,
      created: now,
      pipeline: null,
      run_at: runAt > now ? runAt : null,
    });
    this.w.insert(row);
    // A new errand has no logs: no need to read them back.
    const errand = toErrand(row, this.w, []);
    this.bus.record(tx, "created", errand);
    return errand;
  }

  private claimIn(tx: Tx, type: string): Errand | null {
    const id = this.w.claim(type, this.clock.now());
    if (id === null) return null;
    const row = this.load(id);
    const log = this.appendLog(row.id, "INFO", "Started!");
    const errand = this.emit(tx, "processing", row, log);
    this.changed(tx, row);
    return this.withDependencyResults(errand, tx);
  }

  private failIn(tx: Tx, row: ErrandRow, reason: string): Errand {
    const now = this.clock.now();
    const retries = parseOptions(row).retries ?? 0;
    const log = this.appendLog(row.id, "ERROR", reason);
    row.failed = now;
    row.progress = 0;
    row.ttl_deadline = null;
    const requeue = retries > 0 && row.attempts <= retries;
    const wait = requeue ? backoffMs(parseOptions(row), row.attempts) : 0;
    row.status = !requeue ? "failed" : wait > 0 ? "scheduled" : "inactive";
    row.run_at = wait > 0 ? now + wait : null;
    row.finished = row.status === "failed" ? now : null;
    this.save(row);
    const errand = this.emit(tx, "failed", row, log);
    this.changed(tx, row);
    return errand;
  }

  private removeIn(tx: Tx, row: ErrandRow): Errand {
    const errand = toErrand(row, this.w);
    this.w.remove(row);
    this.bus.record(tx, "deleted", errand);
    return errand;
  }

  private setStatus(row: ErrandRow, status: Status): void {
    const now = this.clock.now();
    row.status = status;
    const final = status === "completed" || status === "failed";
    row.finished = final ? now : null;
    // A completed or failed errand says when, whichever way it got there.
    if (status === "completed") row.completed = now;
    if (status === "failed") row.failed = now;
    if (status === "active") {
      row.started ??= now;
      const { ttl = 0, heartbeat = 0 } = parseOptions(row);
      // Any positive ttl is accepted (v1): one beyond the safe integers means never.
      row.ttl_deadline = ttl > 0 ? Math.min(now + ttl * 60_000, Number.MAX_SAFE_INTEGER) : null;
      row.heartbeat_deadline = heartbeat > 0 ? now + heartbeat * 1000 : null;
    } else {
      row.ttl_deadline = null;
      row.heartbeat_deadline = null;
    }
  }

  /** Lets the errand's pipeline react to its new status: unblock dependents, recount. */
  private changed(tx: Tx, row: ErrandRow): void {
    if (row.pipeline !== null) this.pipelines?.onErrandChanged(tx, row);
  }

  /** Adds the results of the errand's pipeline dependencies, when it has any. */
  private withDependencyResults(errand: Errand, tx?: Tx): Errand {
    if (errand.pipeline === undefined || !this.pipelines) return errand;
    const results = this.pipelines.dependencyResults(errand.id, tx);
    return results === null ? errand : { ...errand, dependencyResults: results };
  }

  private load(id: string): ErrandRow {
    const row = this.w.row(id);
    if (!row) throw notFound(id);
    return row;
  }

  /** Writes the row back; deadlines only live while active, run_at only while scheduled. */
  private save(row: ErrandRow): void {
    if (row.status !== "active") {
      row.ttl_deadline = null;
      row.heartbeat_deadline = null;
    }
    if (row.status !== "scheduled") row.run_at = null;
    this.w.save(row);
  }

  /**
   * A sign of life from the worker: its heartbeat deadline moves on. Only that column is
   * written, and only for an errand with a heartbeat: a log append never rewrites the errand.
   */
  private heardFrom(row: ErrandRow): void {
    const seconds = parseOptions(row).heartbeat ?? 0;
    if (seconds <= 0) return;
    row.heartbeat_deadline = this.clock.now() + seconds * 1000;
    this.w.touch.run(row.heartbeat_deadline, row.id);
  }

  /**
   * Appends a log entry and answers it as stored; the emit that follows every append trims the
   * oldest beyond the max.
   */
  private appendLog(id: string, severity: Log["severity"], message: string): Log {
    const log = { severity, message: keptMessage(message), timestamp: this.clock.now() };
    this.w.appendLog.run(id, log.severity, log.message, log.timestamp);
    return log;
  }

  /**
   * Records the event with the errand as it now is (the event leaves its logs out, and carries
   * `log`, the entry the change appended), and returns that errand with its logs.
   */
  private emit(tx: Tx, event: EventName, row: ErrandRow, log?: Log): Errand {
    const errand = toErrand(row, this.w, this.w.keptLogs(row.id, this.maxLogs) as Log[]);
    this.bus.record(tx, event, errand, log);
    return errand;
  }
}

function notFound(id: string): NotFound {
  return new NotFound("Errand not found", `no errand has id ${JSON.stringify(id)}`);
}

/** With `attempt`, the call is only for that attempt of an active errand (a lease). */
function requireAttempt(row: ErrandRow, attempt: number | undefined): void {
  if (attempt === undefined) return;
  if (row.status !== "active" || row.attempts !== attempt) {
    throw new Conflict(
      "Attempt superseded",
      `errand ${row.id} is ${row.status} at attempt ${row.attempts}, not active at attempt ${attempt}`,
    );
  }
}

/** When an errand may first run: options.runAt, or creation + options.delay, or now. */
export function startTime(options: Errand["options"], now: number): number {
  if (options.runAt !== undefined && options.delay !== undefined) {
    throw new BadInput("Invalid request", "body.options: give runAt or delay, not both");
  }
  return options.runAt ?? now + (options.delay ?? 0);
}

/**
 * A log message or failure reason as kept: longer ones (a long stack trace) are cut, not
 * refused, since refusing would leave the worker's report unrecorded; an errand carries its
 * logs in every answer, so they stay bounded.
 */
function keptMessage(message: string): string {
  if (message.length <= MAX_LOG_MESSAGE) return message;
  // Not between the two halves of a surrogate pair (an emoji, say).
  const high = message.charCodeAt(MAX_LOG_MESSAGE - 1);
  const end = high >= 0xd800 && high <= 0xdbff ? MAX_LOG_MESSAGE - 1 : MAX_LOG_MESSAGE;
  return `${message.slice(0, end)}… [${message.length - end} more characters cut]`;
}

const MAX_BACKOFF_MS = 3_600_000;

/** How long a re-queued errand waits after failed attempt `attempts`; 0 without a backoff. */
export function backoffMs(options: Errand["options"], attempts: number): number {
  const backoff = options.backoff;
  if (!backoff) return 0;
  if (backoff.type === "fixed") return backoff.delay;
  return Math.min(backoff.delay * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

function requireActive(row: ErrandRow, action: string): void {
  if (row.status !== "active") {
    throw new Conflict(
      "Errand must be in active state",
      `errand ${row.id} is ${row.status}: only an active errand can ${action}`,
    );
  }
}

function requireNotBlocked(row: ErrandRow, action: string): void {
  if (row.status === "blocked") {
    throw new Conflict(
      `Cannot ${action} a blocked errand`,
      `errand ${row.id} is blocked: it waits on its pipeline dependencies`,
    );
  }
}

function parseOptions(row: ErrandRow): Errand["options"] {
  return JSON.parse(row.options) as Errand["options"];
}

/** Options the errand schema names; others are ignored as v1 did, not stored unvalidated. */
const OPTION_KEYS = Object.keys(ErrandOptions.properties) as Array<keyof Errand["options"]>;

/** Keeps the known options and drops zero and false ones, as v1's omitempty did. */
export function normalizeOptions(options: Errand["options"]): Errand["options"] {
  const kept: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) {
    const value = options[key];
    if (value !== 0 && value !== false && value !== undefined && value !== null) kept[key] = value;
  }
  return kept as Errand["options"];
}

/** The errand as clients see it, optional fields omitted when empty (v1). */
export function toErrand(row: ErrandRow, sql: ErrandReads, knownLogs?: Log[]): Errand {
  const errand: Errand = {
    id: row.id,
    name: row.name,
    type: row.type,
    options: parseOptions(row),
    created: row.created,
    status: row.status as Status,
    progress: row.progress,
    attempts: row.attempts,
  };
  // Stored as JSON.stringify wrote them: an empty object is exactly "{}" (omitted, as v1).
  if (row.data !== null && row.data !== "{}") errand.data = JSON.parse(row.data);
  if (row.results !== null && row.results !== "{}") errand.results = JSON.parse(row.results);
  if (row.started) errand.started = row.started;
  if (row.failed) errand.failed = row.failed;
  if (row.completed) errand.completed = row.completed;
  const logs = knownLogs ?? (sql.logs.all(row.id) as Log[]);
  if (logs.length > 0) errand.logs = logs;
  if (row.pipeline !== null) errand.pipeline = row.pipeline;
  return errand;
}
