// The errand lifecycle as a service: loads errands from the driver, applies the rules of
// src/lifecycle/, saves the result, appends its log line and records its event, each request
// in one transaction. Knows nothing of HTTP, and nothing of SQL.

import type { Clock } from "../clock.ts";
import { BadInput, Conflict, NotFound } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import { claim, release } from "../lifecycle/claim.ts";
import { newErrand } from "../lifecycle/create.ts";
import {
  checkBulkStatus,
  complete,
  type ExpiryReason,
  expire,
  fail,
  retry,
  setStatus,
} from "../lifecycle/finish.ts";
import { promote } from "../lifecycle/schedule.ts";
import type { Transition } from "../lifecycle/transition.ts";
import { heartbeat, log, progress } from "../lifecycle/working.ts";
import { pageOf, pagesOf } from "../paging.ts";
import type { Driver, Reads, ScheduledCursor, Staged, WriteTx } from "../store/driver.ts";
import type { ErrandRecord, LogEntry, Status } from "../store/records.ts";
import type { IdempotencyKeys } from "./idempotency.ts";
import type { Errand, ErrandSpec, ListKey, Log } from "./model.ts";
import { toErrand } from "./view.ts";

export interface ErrandServiceDeps {
  driver: Driver;
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
  onErrandChanged(tx: WriteTx, errand: ErrandRecord): Promise<void>;
  /** The results of the errand's dependencies by name, or null when it has none. */
  dependencyResults(
    reads: Reads,
    id: string,
  ): Promise<Record<string, Record<string, unknown>> | null>;
  /**
   * Deletes pipelines settled before `threshold`, whole, until about `limit` errands have gone;
   * answers them (clear).
   */
  clearFinished(tx: WriteTx, threshold: number, limit: number): Promise<Errand[]>;
}

/** Which errands a list holds: all, those of a status or type, or those named with a prefix. */
export type Filter = { key: ListKey; value: string } | { key: "name"; prefix: string } | null;

/** Where the scheduled list resumes, as a client holds it: `<runAt>:<id>`, opaque to it. */
export function scheduledCursor(errand: { runAt: number | null; id: string }): string {
  return `${errand.runAt ?? 0}:${errand.id}`;
}

function parseScheduledCursor(text: string): ScheduledCursor {
  const match = /^(\d{1,16}):(.+)$/s.exec(text);
  const runAt = Number(match?.[1]);
  if (!match?.[2] || !Number.isSafeInteger(runAt)) {
    throw new BadInput(
      "Invalid cursor",
      `${JSON.stringify(text)} is not a cursor of this list: pass the \`next\` of the last page`,
    );
  }
  return { runAt, id: match[2] };
}

export type BulkChange = { status: Status } | { delete: true };

const SWEEP_BATCH = 500;
/** About how many errands one write of clear deletes (a pipeline goes whole). */
const CLEAR_BATCH = 1000;

export class ErrandService {
  private readonly driver: Driver;
  private readonly clock: Clock;
  private readonly bus: EventBus;
  private readonly maxLogs: number;
  private readonly onExpired: (errand: Errand, reason: string) => void;
  private readonly pipelines: PipelineHooks | undefined;
  private readonly keys: IdempotencyKeys;

  constructor(deps: ErrandServiceDeps) {
    this.driver = deps.driver;
    this.clock = deps.clock;
    this.bus = deps.bus;
    this.maxLogs = deps.maxLogs;
    this.onExpired = deps.onExpired ?? (() => {});
    this.pipelines = deps.pipelines;
    this.keys = deps.keys;
  }

  /** Creates an errand; with an idempotency key, a repeat answers the first result. */
  create(spec: ErrandSpec, key?: string): Promise<Errand> {
    return this.driver.write((tx) =>
      this.keys.run(tx, key, "create errand", spec, () => this.insert(tx, spec)),
    );
  }

  /** Creates all the errands or none, in one transaction. */
  createMany(specs: ErrandSpec[], key?: string): Promise<Errand[]> {
    return this.driver.write((tx) =>
      this.keys.run(tx, key, "create errands", specs, async () => {
        const created: Errand[] = [];
        for (const spec of specs) created.push(await this.insert(tx, spec));
        return created;
      }),
    );
  }

  async get(id: string): Promise<Errand> {
    const reads = this.driver.reads;
    const record = await reads.errand(id);
    if (!record) throw notFound(id);
    return this.withDependencyResults(reads, toErrand(record, await reads.logs(id)));
  }

  /** Pages of errands in creation order, read from committed data. */
  async *pages(filter: Filter, after = ""): AsyncGenerator<Errand[]> {
    for await (const records of pagesOf(this.readPage(filter), after)) {
      yield await this.withLogs(records);
    }
  }

  /** One page and the cursor of the next, or null when this is the last. */
  async page(
    filter: Filter,
    after: string,
    limit: number,
  ): Promise<{ errands: Errand[]; next: string | null }> {
    const { rows, next } = await pageOf(this.readPage(filter), after, limit);
    return { errands: await this.withLogs(rows), next };
  }

  private readPage(filter: Filter) {
    const reads = this.driver.reads;
    if (filter?.key === "name") {
      const { prefix } = filter;
      return (after: string, limit: number) => reads.errandPageByName(prefix, after, limit);
    }
    return (after: string, limit: number) => reads.errandPage(filter, after, limit);
  }

  /**
   * One page of the scheduled errands, soonest first (runAt, then id), from a cursor of the
   * form `scheduledCursor` gives, and the cursor of the next page or null.
   */
  async scheduledPage(
    after: string | undefined,
    limit: number,
  ): Promise<{ errands: Errand[]; next: string | null }> {
    const from = after === undefined ? null : parseScheduledCursor(after);
    const rows = await this.driver.reads.scheduledPage(from, limit + 1);
    const kept = rows.slice(0, limit);
    const last = kept[kept.length - 1];
    const next = rows.length > limit && last ? scheduledCursor(last) : null;
    return { errands: await this.withLogs(kept), next };
  }

  /** The errands of a page with their logs, read in one query. */
  private async withLogs(records: ErrandRecord[]): Promise<Errand[]> {
    const logs = await this.driver.reads.logsOf(records.map((r) => r.id));
    return records.map((record) => toErrand(record, logs.get(record.id) ?? []));
  }

  /** Claims the next inactive errand of `type`, or answers null when none waits. */
  claim(type: string): Promise<Errand | null> {
    return this.driver.write((tx) => this.claimIn(tx, type));
  }

  /** Claims in the open write group: answered as soon as it ran, durable later. */
  claimStaged(type: string): Promise<Staged<Errand | null>> {
    return this.driver.stage((tx) => this.claimIn(tx, type));
  }

  /** Puts an errand back in the queue when attempt `attempt` of it has had no worker. */
  release(id: string, attempt: number): Promise<Errand | null> {
    return this.driver.write(async (tx) => {
      const record = await tx.lockErrand(id);
      const change = record && release(record, attempt, this.clock.now());
      return record && change ? this.apply(tx, record, change) : null;
    });
  }

  progress(id: string, value: number, attempt?: number): Promise<Errand> {
    return this.change(id, (record, now) => progress(record, value, now, attempt));
  }

  log(id: string, severity: Log["severity"], message: string, attempt?: number): Promise<Errand> {
    return this.change(id, (record, now) => log(record, { severity, message }, now, attempt));
  }

  /** The worker of an active errand is alive: pushes its heartbeat deadline on. No event. */
  heartbeat(id: string, attempt?: number): Promise<Errand> {
    return this.change(id, (record, now) => heartbeat(record, now, attempt));
  }

  fail(id: string, reason: string, attempt?: number): Promise<Errand> {
    return this.change(id, (record, now) => fail(record, reason, now, attempt));
  }

  retry(id: string): Promise<Errand> {
    return this.change(id, (record, now) => retry(record, now));
  }

  complete(
    id: string,
    results: Record<string, unknown> | undefined,
    attempt?: number,
  ): Promise<Errand> {
    return this.driver.write((tx) => this.completeIn(tx, id, results, attempt));
  }

  /** Completes the errand and, in the same transaction, claims the next one of its type. */
  completeAndClaim(
    id: string,
    results: Record<string, unknown> | undefined,
    attempt?: number,
  ): Promise<{ completed: Errand; next: Errand | null }> {
    return this.driver.write(async (tx) => {
      const completed = await this.completeIn(tx, id, results, attempt);
      return { completed, next: await this.claimIn(tx, completed.type) };
    });
  }

  /** Deletes the errand; an unknown id is not an error (v1). */
  remove(id: string): Promise<void> {
    return this.driver.write(async (tx) => {
      const record = await tx.lockErrand(id);
      if (!record) return;
      if (record.pipeline !== null) throw pipelineMember(record);
      await this.removeIn(tx, record);
    });
  }

  /** Sets every matching errand to a status, or deletes them all; returns how many. */
  async updateWhere(filter: { key: ListKey; value: string }, change: BulkChange): Promise<number> {
    if ("status" in change) checkBulkStatus(change.status);
    return this.driver.write(async (tx) => {
      let count = 0;
      for (const id of await tx.errandIdsWhere(filter)) {
        const record = await tx.lockErrand(id);
        if (!record) continue;
        if ("delete" in change) {
          // Pipeline errands go with their pipeline.
          if (record.pipeline !== null) continue;
          await this.removeIn(tx, record);
        } else {
          await this.apply(tx, record, setStatus(record, change.status, this.clock.now()));
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
      this.driver.write(async (tx) => {
        const removed: Errand[] = [];
        for (const id of await tx.finishedBefore(threshold, CLEAR_BATCH)) {
          const record = await tx.lockErrand(id);
          if (record) removed.push(await this.removeIn(tx, record));
        }
        // Errands of a pipeline go with their pipeline, once all of it is done.
        if (removed.length < CLEAR_BATCH && this.pipelines) {
          for (const errand of await this.pipelines.clearFinished(tx, threshold, CLEAR_BATCH)) {
            removed.push(errand);
          }
        }
        return removed;
      });
    const driver = this.driver;
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
        while (more && !driver.isClosing) more = (await batch()).length > 0;
        more = false;
        return { done: true, value: undefined };
      },
    };
  }

  /** Fails every active errand past its TTL (re-queued when retries remain); returns how many. */
  expireOverdue(): Promise<number> {
    return this.expireEach((tx, now) => tx.overdueIds(now, SWEEP_BATCH), "TTL Expired");
  }

  /** Fails every active errand whose worker has gone quiet past its heartbeat. */
  expireSilent(): Promise<number> {
    return this.expireEach((tx, now) => tx.silentIds(now, SWEEP_BATCH), "Heartbeat timeout");
  }

  /** Queues every scheduled errand that has come due (event `updated`); returns how many. */
  async promoteDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const promoted = await this.driver.write(async (tx) => {
        const ids = await tx.dueIds(this.clock.now(), SWEEP_BATCH);
        for (const id of ids) {
          const record = await tx.lockErrand(id);
          if (record?.status === "scheduled") await this.apply(tx, record, promote(record));
        }
        return ids.length;
      });
      total += promoted;
      if (promoted < SWEEP_BATCH) return total;
    }
  }

  private async expireEach(
    due: (tx: WriteTx, now: number) => Promise<string[]>,
    reason: ExpiryReason,
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.driver.write(async (tx) => {
        const now = this.clock.now();
        const errands: Errand[] = [];
        for (const id of await due(tx, now)) {
          const record = await tx.lockErrand(id);
          if (record) errands.push(await this.apply(tx, record, expire(record, reason, now)));
        }
        return errands;
      });
      for (const errand of expired) this.onExpired(errand, reason);
      total += expired.length;
      if (expired.length < SWEEP_BATCH) return total;
    }
  }

  // --- inside a write transaction ---

  /** Loads the errand, applies a rule to it, and keeps the result. */
  private change(id: string, rule: (record: ErrandRecord, now: number) => Transition) {
    return this.driver.write(async (tx) => {
      const record = await this.load(tx, id);
      return this.apply(tx, record, rule(record, this.clock.now()));
    });
  }

  /**
   * Creates an errand inside a write (event `created`): the one way in, for a create, a batch
   * and a schedule's tick, which passes the log line that says why it was made.
   */
  async insert(tx: WriteTx, spec: ErrandSpec, note?: LogEntry): Promise<Errand> {
    const record = newErrand(spec, { id: Bun.randomUUIDv7(), now: this.clock.now() });
    await tx.insertErrand(record);
    if (note) await tx.appendLog(record.id, note);
    // A new errand has no logs but this one: no need to read them back.
    const errand = toErrand(record, note ? [note] : []);
    await this.bus.record(tx, "created", errand, note);
    return errand;
  }

  private async claimIn(tx: WriteTx, type: string): Promise<Errand | null> {
    const record = await tx.nextClaimable(type);
    if (record === null) return null;
    const errand = await this.apply(tx, record, claim(record, this.clock.now()));
    return this.withDependencyResults(tx, errand);
  }

  private async completeIn(
    tx: WriteTx,
    id: string,
    results: Record<string, unknown> | undefined,
    attempt: number | undefined,
  ): Promise<Errand> {
    const record = await this.load(tx, id);
    const change = complete(record, results, this.clock.now(), attempt);
    const errand = await this.apply(tx, record, change);
    // An errand of a pipeline stays while its pipeline does: its results feed its dependents.
    if (errand.options.deleteOnCompleted && record.pipeline === null) {
      await this.removeIn(tx, change.errand);
    }
    return errand;
  }

  /**
   * Keeps a transition: saves the errand (only its heartbeat deadline when nothing else
   * changed), appends its log line, records its event with the errand as it now is, and lets
   * its pipeline react to a new status.
   */
  private async apply(tx: WriteTx, before: ErrandRecord, change: Transition): Promise<Errand> {
    const after = change.errand;
    if (after !== before) {
      if (onlyHeartbeatMoved(before, after) && after.heartbeatDeadline !== null) {
        await tx.extendHeartbeat(after.id, after.heartbeatDeadline);
      } else {
        await tx.saveErrand(after);
      }
    }
    if (change.log) await tx.appendLog(after.id, change.log);
    // Read back for the answer; beyond ERRANDS_MAX_LOGS the oldest are dropped here.
    const logs =
      change.event === null ? await tx.logs(after.id) : await tx.keptLogs(after.id, this.maxLogs);
    const errand = toErrand(after, logs);
    if (change.event) await this.bus.record(tx, change.event, errand, change.log);
    if (after.pipeline !== null && after.status !== before.status) {
      await this.pipelines?.onErrandChanged(tx, after);
    }
    return errand;
  }

  private async removeIn(tx: WriteTx, record: ErrandRecord): Promise<Errand> {
    const errand = toErrand(record, await tx.logs(record.id));
    await tx.removeErrand(record);
    await this.bus.record(tx, "deleted", errand);
    return errand;
  }

  /** Adds the results of the errand's pipeline dependencies, when it has any. */
  private async withDependencyResults(reads: Reads, errand: Errand): Promise<Errand> {
    if (errand.pipeline === undefined || !this.pipelines) return errand;
    const results = await this.pipelines.dependencyResults(reads, errand.id);
    return results === null ? errand : { ...errand, dependencyResults: results };
  }

  private async load(tx: WriteTx, id: string): Promise<ErrandRecord> {
    const record = await tx.lockErrand(id);
    if (!record) throw notFound(id);
    return record;
  }
}

/** Whether a change moved the heartbeat deadline and nothing else that is stored. */
function onlyHeartbeatMoved(before: ErrandRecord, after: ErrandRecord): boolean {
  return (
    after.status === before.status &&
    after.progress === before.progress &&
    after.results === before.results &&
    after.attempts === before.attempts &&
    after.started === before.started &&
    after.failed === before.failed &&
    after.completed === before.completed &&
    after.finished === before.finished &&
    after.ttlDeadline === before.ttlDeadline &&
    after.runAt === before.runAt
  );
}

function pipelineMember(record: ErrandRecord): Conflict {
  return new Conflict(
    "Cannot delete an errand of a pipeline",
    `errand ${record.id} belongs to pipeline ${record.pipeline}: delete the pipeline instead`,
  );
}

function notFound(id: string): NotFound {
  return new NotFound("Errand not found", `no errand has id ${JSON.stringify(id)}`);
}
