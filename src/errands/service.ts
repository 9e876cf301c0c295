// The errand lifecycle as a service: loads errands from the driver, applies the rules of
// src/lifecycle/, saves the result, appends its log line and records its event, each request
// in one transaction. Knows nothing of HTTP, and nothing of SQL.

import type { Clock } from "../clock.ts";
import { BadInput, Conflict, NotFound } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import type { StagedClaim } from "../events/waiters.ts";
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
import { removal } from "../lifecycle/remove.ts";
import { promote } from "../lifecycle/schedule.ts";
import type { Transition } from "../lifecycle/transition.ts";
import { heartbeat, log, progress } from "../lifecycle/working.ts";
import { pageOf, pagesOf } from "../paging.ts";
import type {
  Driver,
  ErrandFilter,
  ListOrder,
  Reads,
  ScheduledCursor,
  WriteTx,
} from "../store/driver.ts";
import type { ErrandRecord, LogEntry, RateHold, Status } from "../store/records.ts";
import type { IdempotencyKeys } from "./idempotency.ts";
import { type Ack, BULK_MAX, type Errand, type ErrandSpec, type Log } from "./model.ts";
import { toErrand } from "./view.ts";

export interface ErrandServiceDeps {
  driver: Driver;
  clock: Clock;
  bus: EventBus;
  maxLogs: number;
  /** Told of each TTL or heartbeat expiry, for the operator's log. */
  onExpired?: (errand: Errand, reason: string) => void;
  /** Told of each claim a type's rate limit let take nothing, for the metrics. */
  onRateLimited?: (type: string) => void;
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

/** Which errands a list holds: those of a status, a type, both or neither, or a name prefix. */
export type Filter = ErrandFilter | { name: string };

/** The errands a bulk action takes: these ids, or the next batch of a filter after a cursor. */
export type Selection = { ids: string[] } | { filter: ErrandFilter; after: string };

/** What a bulk action did: errands changed, errands its rule refused, and where to go on. */
export interface BulkOutcome {
  count: number;
  skipped: number;
  /** The last id examined when more may match the filter (the next `after`), else null. */
  next: string | null;
}

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

/** What became of one item of an ack: the errand after it, or why it was refused. */
export type AckOutcome =
  | { id: string; errand: Errand }
  | { id: string; error: NotFound | Conflict };

const SWEEP_BATCH = 500;
/** About how many errands one write of clear deletes (a pipeline goes whole). */
const CLEAR_BATCH = 1000;

export class ErrandService {
  private readonly driver: Driver;
  private readonly clock: Clock;
  private readonly bus: EventBus;
  private readonly maxLogs: number;
  private readonly onExpired: (errand: Errand, reason: string) => void;
  private readonly onRateLimited: (type: string) => void;
  private readonly pipelines: PipelineHooks | undefined;
  private readonly keys: IdempotencyKeys;

  constructor(deps: ErrandServiceDeps) {
    this.driver = deps.driver;
    this.clock = deps.clock;
    this.bus = deps.bus;
    this.maxLogs = deps.maxLogs;
    this.onExpired = deps.onExpired ?? (() => {});
    this.onRateLimited = deps.onRateLimited ?? (() => {});
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

  /** Pages of errands in creation order, either way, read from committed data. */
  async *pages(filter: Filter, order: ListOrder, after = ""): AsyncGenerator<Errand[]> {
    for await (const records of pagesOf(this.readPage(filter, order), after)) {
      yield await this.withLogs(records);
    }
  }

  /** One page and the cursor of the next, or null when this is the last. */
  async page(
    filter: Filter,
    order: ListOrder,
    after: string,
    limit: number,
  ): Promise<{ errands: Errand[]; next: string | null }> {
    const { rows, next } = await pageOf(this.readPage(filter, order), after, limit);
    return { errands: await this.withLogs(rows), next };
  }

  private readPage(filter: Filter, order: ListOrder) {
    const reads = this.driver.reads;
    if ("name" in filter) {
      const { name } = filter;
      return (after: string, limit: number) => reads.errandPageByName(name, after, limit, order);
    }
    return (after: string, limit: number) => reads.errandPage(filter, after, limit, order);
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

  /**
   * Claims in the open write group: answered as soon as it ran, durable later; with the rate
   * limit that let it take nothing, if one did.
   */
  async claimStaged(type: string): Promise<StagedClaim<Errand | null>> {
    const { result, durable } = await this.driver.stage((tx) => this.claimUpTo(tx, type, 1));
    return { result: result.errands[0] ?? null, held: result.held, durable };
  }

  /**
   * Claims up to `count` errands of `type` in one write, in claim order (no more than the
   * type's free slots and its rate limit's allowance, none while it is paused): answered as
   * soon as it ran, durable later; with the rate limit that let it take nothing, if one did.
   */
  async claimManyStaged(type: string, count: number): Promise<StagedClaim<Errand[]>> {
    const { result, durable } = await this.driver.stage((tx) => this.claimUpTo(tx, type, count));
    return { result: result.errands, held: result.held, durable };
  }

  private async claimUpTo(
    tx: WriteTx,
    type: string,
    count: number,
  ): Promise<{ errands: Errand[]; held: RateHold | null }> {
    const now = this.clock.now();
    const errands: Errand[] = [];
    for (const record of await tx.nextClaimables(type, count, now)) {
      errands.push(await this.claimRecord(tx, record, now));
    }
    // Asked only when nothing was taken: a claim that took errands pays nothing more.
    const held = errands.length === 0 ? await tx.rateLimitHold(type, now) : null;
    if (held) this.onRateLimited(type);
    return { errands, held };
  }

  /**
   * Puts claimed errands back in the queue, in one write, each only if the attempt it was
   * claimed at has had no worker since; answers those put back.
   */
  release(claimed: Array<Pick<Errand, "id" | "attempts">>): Promise<Errand[]> {
    return this.driver.write(async (tx) => {
      const released: Errand[] = [];
      for (const { id, attempts } of claimed) {
        const record = await tx.lockErrand(id);
        const change = record && release(record, attempts, this.clock.now());
        if (record && change) released.push(await this.apply(tx, record, change));
      }
      return released;
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

  /**
   * Completes or fails each errand of a list, in one transaction, each under the rules of a
   * single completion or failure. An item refused (unknown errand, superseded attempt, blocked
   * errand, or an errand an earlier item of the list already named) changes nothing and leaves
   * the others be; answers each item's outcome, in order.
   */
  ack(items: Ack[]): Promise<AckOutcome[]> {
    return this.driver.write(async (tx) => {
      // Locked up front in id order, so two lists that share errands never wait on each other.
      const locked = await tx.lockErrands([...new Set(items.map((item) => item.id))]);
      const byId = new Map(locked.map((record) => [record.id, record]));
      const named = new Set<string>();
      const outcomes: AckOutcome[] = [];
      for (const item of items) {
        if (named.has(item.id)) {
          outcomes.push({ id: item.id, error: namedTwice(item.id) });
          continue;
        }
        named.add(item.id);
        outcomes.push(await this.ackIn(tx, item, byId.get(item.id) ?? null));
      }
      return outcomes;
    });
  }

  /** Deletes the errand; an unknown id is not an error (v1). */
  remove(id: string): Promise<void> {
    return this.driver.write(async (tx) => {
      const record = await tx.lockErrand(id);
      if (record) await this.removeIn(tx, removal(record));
    });
  }

  /** Retries, in one write, each selected errand the retry rule takes; skips the others. */
  retryMany(selection: Selection): Promise<BulkOutcome> {
    return this.each(selection, async (tx, record, now) => {
      const change = unlessRefused(() => retry(record, now));
      if (change) await this.apply(tx, record, change);
      return change !== null;
    });
  }

  /** Deletes, in one write, each selected errand a delete takes (none of a pipeline). */
  removeMany(selection: Selection): Promise<BulkOutcome> {
    return this.each(selection, async (tx, record) => {
      const errand = unlessRefused(() => removal(record));
      if (errand) await this.removeIn(tx, errand);
      return errand !== null;
    });
  }

  /**
   * Runs `act` on each selected errand in one write, so a failure keeps none of the changes;
   * an errand unknown, gone, or no longer matching the filter once locked is skipped.
   */
  private each(
    selection: Selection,
    act: (tx: WriteTx, record: ErrandRecord, now: number) => Promise<boolean>,
  ): Promise<BulkOutcome> {
    return this.driver.write(async (tx) => {
      const { ids, next } = await batchOf(tx, selection);
      const filter = "filter" in selection ? selection.filter : {};
      let count = 0;
      for (const id of ids) {
        const record = await tx.lockErrand(id);
        if (record && matches(record, filter) && (await act(tx, record, this.clock.now()))) {
          count++;
        }
      }
      return { count, skipped: ids.length - count, next };
    });
  }

  /** Sets every matching errand to a status, or deletes them all; returns how many. */
  async updateWhere(filter: ErrandFilter, change: BulkChange): Promise<number> {
    if ("status" in change) checkBulkStatus(change.status);
    return this.driver.write(async (tx) => {
      let count = 0;
      for (let after = ""; ; ) {
        // Ids a page at a time, all in this one write.
        const ids = await tx.errandIdsWhere(filter, after, BULK_MAX);
        for (const id of ids) {
          const record = await tx.lockErrand(id);
          if (!record) continue;
          if ("delete" in change) {
            const errand = unlessRefused(() => removal(record));
            if (!errand) continue;
            await this.removeIn(tx, errand);
          } else {
            await this.apply(tx, record, setStatus(record, change.status, this.clock.now()));
          }
          count++;
        }
        if (ids.length < BULK_MAX) return count;
        after = ids[ids.length - 1] ?? after;
      }
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
    const now = this.clock.now();
    const record = await tx.nextClaimable(type, now);
    return record === null ? null : this.claimRecord(tx, record, now);
  }

  /**
   * Claims an errand the driver picked, with the results of its dependencies; started at the
   * `now` the driver counted it at under a rate limit.
   */
  private async claimRecord(tx: WriteTx, record: ErrandRecord, now: number): Promise<Errand> {
    const errand = await this.apply(tx, record, claim(record, now));
    return this.withDependencyResults(tx, errand);
  }

  private async completeIn(
    tx: WriteTx,
    id: string,
    results: Record<string, unknown> | undefined,
    attempt: number | undefined,
  ): Promise<Errand> {
    const record = await this.load(tx, id);
    return this.keepCompletion(tx, record, complete(record, results, this.clock.now(), attempt));
  }

  /** Keeps a completion; an errand with `deleteOnCompleted` is then deleted. */
  private async keepCompletion(
    tx: WriteTx,
    record: ErrandRecord,
    change: Transition,
  ): Promise<Errand> {
    const errand = await this.apply(tx, record, change);
    // An errand of a pipeline stays while its pipeline does: its results feed its dependents.
    if (errand.options.deleteOnCompleted && record.pipeline === null) {
      await this.removeIn(tx, change.errand);
    }
    return errand;
  }

  /**
   * One item of an ack, on the errand as locked for the list. An errand of a pipeline is read
   * again: an earlier item may have changed it (unblocked it, or deleted it with its pipeline).
   */
  private async ackIn(tx: WriteTx, item: Ack, locked: ErrandRecord | null): Promise<AckOutcome> {
    const record = locked?.pipeline ? await tx.lockErrand(item.id) : locked;
    const now = this.clock.now();
    let change: Transition;
    try {
      if (!record) throw notFound(item.id);
      change = item.completed
        ? complete(record, item.completed.results, now, item.attempt)
        : fail(record, item.failed.reason, now, item.attempt);
    } catch (error) {
      // Refused before anything was written: the other items go on.
      if (error instanceof NotFound || error instanceof Conflict) return { id: item.id, error };
      throw error;
    }
    const errand = item.completed
      ? await this.keepCompletion(tx, record, change)
      : await this.apply(tx, record, change);
    return { id: item.id, errand };
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

/** The ids a bulk action examines, and the cursor to go on from when more may match. */
async function batchOf(
  tx: WriteTx,
  selection: Selection,
): Promise<{ ids: string[]; next: string | null }> {
  // In id order, as every write that locks several errands takes them: two never wait on
  // each other in opposite orders.
  if ("ids" in selection) return { ids: [...new Set(selection.ids)].sort(), next: null };
  // One more than a batch: whether any is left after it.
  const ids = await tx.errandIdsWhere(selection.filter, selection.after, BULK_MAX + 1);
  if (ids.length <= BULK_MAX) return { ids, next: null };
  const batch = ids.slice(0, BULK_MAX);
  return { ids: batch, next: batch[batch.length - 1] ?? null };
}

function matches(record: ErrandRecord, filter: ErrandFilter): boolean {
  return (
    (filter.status === undefined || record.status === filter.status) &&
    (filter.type === undefined || record.type === filter.type)
  );
}

/** The rule's answer, or null when it refuses the errand (409): bulk actions skip those. */
function unlessRefused<T>(rule: () => T): T | null {
  try {
    return rule();
  } catch (error) {
    if (error instanceof Conflict) return null;
    throw error;
  }
}

function namedTwice(id: string): Conflict {
  return new Conflict(
    "Errand named twice",
    `errand ${id} is named by an earlier item of this list: each errand is acknowledged once`,
  );
}

function notFound(id: string): NotFound {
  return new NotFound("Errand not found", `no errand has id ${JSON.stringify(id)}`);
}
