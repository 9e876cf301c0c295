// The driver's methods over prepared statements: reads on either connection, and the write
// transaction on the write connection. bun:sqlite answers at once; the methods are async only
// because the interface is.

import type { Database } from "bun:sqlite";
import { StorageUnavailable } from "../../errors.ts";
import {
  type ErrandFilter,
  type ListOrder,
  type LoggedEvent,
  prefixEnd,
  type Reads,
  type ScheduledCursor,
  type WriteTx,
} from "../driver.ts";
import type {
  CountRow,
  Dependency,
  ErrandRecord,
  EventRecord,
  LogEntry,
  MinuteCounts,
  MinuteDelta,
  PipelineProgress,
  PipelineRecord,
  PipelineStatus,
  RateHold,
  ScheduleRecord,
  TypeControlsRecord,
  WaitingCount,
} from "../records.ts";
import type { TypeCounts } from "./counts.ts";
import { ErrandReads, ErrandWrites, toRecord, toRow } from "./errands.ts";
import { EventReads, EventWrites } from "./events.ts";
import { HistoryReads, HistoryWrites } from "./history.ts";
import { PipelineReads, PipelineWrites, toPipelineRecord } from "./pipelines.ts";
import { ScheduleReads, ScheduleWrites, toScheduleRecord } from "./schedules.ts";
import { IdempotencySql, TypeReads, TypeWrites, toControls } from "./types.ts";

/** The read statements of one connection. */
export class ReadStatements {
  readonly errands: ErrandReads;
  readonly pipelines: PipelineReads;
  readonly types: TypeReads;
  readonly events: EventReads;
  readonly history: HistoryReads;
  readonly schedules: ScheduleReads;

  constructor(db: Database) {
    this.errands = new ErrandReads(db);
    this.pipelines = new PipelineReads(db);
    this.types = new TypeReads(db);
    this.events = new EventReads(db);
    this.history = new HistoryReads(db);
    this.schedules = new ScheduleReads(db);
  }
}

/** The statements of the write connection: its reads, and every change. */
export class WriteStatements extends ReadStatements {
  readonly errandWrites: ErrandWrites;
  readonly pipelineWrites: PipelineWrites;
  readonly typeWrites: TypeWrites;
  readonly eventWrites: EventWrites;
  readonly keys: IdempotencySql;
  readonly historyWrites: HistoryWrites;
  readonly scheduleWrites: ScheduleWrites;

  constructor(db: Database) {
    super(db);
    this.historyWrites = new HistoryWrites(db);
    this.scheduleWrites = new ScheduleWrites(db);
    this.errandWrites = new ErrandWrites(db);
    this.pipelineWrites = new PipelineWrites(db);
    this.typeWrites = new TypeWrites(db);
    this.eventWrites = new EventWrites(db);
    this.keys = new IdempotencySql(db);
  }
}

export class SqliteReads implements Reads {
  constructor(
    private readonly statements: ReadStatements,
    /** Whether the database is still open: a read of a closed one is a 503, not a 500. */
    private readonly isOpen: () => boolean = () => true,
  ) {}

  protected get s(): ReadStatements {
    if (!this.isOpen()) throw new StorageUnavailable("the database is closed");
    return this.statements;
  }

  async errand(id: string): Promise<ErrandRecord | null> {
    const row = this.s.errands.get.get(id);
    return row ? toRecord(row) : null;
  }

  async logs(id: string): Promise<LogEntry[]> {
    return this.s.errands.logs.all(id);
  }

  async logsOf(ids: string[]): Promise<Map<string, LogEntry[]>> {
    const byErrand = new Map<string, LogEntry[]>();
    if (ids.length === 0) return byErrand;
    for (const { errand_id, severity, message, timestamp } of this.s.errands.logsOf.all(
      JSON.stringify(ids),
    )) {
      const logs = byErrand.get(errand_id);
      if (logs) logs.push({ severity, message, timestamp });
      else byErrand.set(errand_id, [{ severity, message, timestamp }]);
    }
    return byErrand;
  }

  async errandPage(
    filter: ErrandFilter,
    after: string,
    limit: number,
    order: ListOrder,
  ): Promise<ErrandRecord[]> {
    return this.s.errands.page[order].read(filter, after, limit).map(toRecord);
  }

  async scheduledPage(after: ScheduledCursor | null, limit: number): Promise<ErrandRecord[]> {
    // Before every errand: runAt is never negative.
    const from = after ?? { runAt: -1, id: "" };
    return this.s.errands.pageScheduled.all(from.runAt, from.id, limit).map(toRecord);
  }

  async errandPageByName(
    prefix: string,
    after: string,
    limit: number,
    order: ListOrder,
  ): Promise<ErrandRecord[]> {
    const rows = this.s.errands.pageByName[order].read(prefix, prefixEnd(prefix), after, limit);
    return rows.map(toRecord);
  }

  async pipeline(id: string): Promise<PipelineRecord | null> {
    const row = this.s.pipelines.get.get(id);
    return row ? toPipelineRecord(row) : null;
  }

  async pipelinePage(
    status: PipelineStatus | undefined,
    after: string,
    limit: number,
  ): Promise<PipelineRecord[]> {
    return this.s.pipelines.page(status, after, limit).map(toPipelineRecord);
  }

  async pipelineErrands(id: string): Promise<ErrandRecord[]> {
    return this.s.pipelines.errands.all(id).map(toRecord);
  }

  async dependencies(pipelineId: string): Promise<Dependency[]> {
    return this.s.pipelines.dependencies.all(pipelineId);
  }

  async dependencyResults(errandId: string) {
    return this.s.pipelines.dependencyResults.all(errandId);
  }

  async countsByTypeAndStatus(): Promise<CountRow[]> {
    return this.s.types.depth.all();
  }

  async typeControls(): Promise<TypeControlsRecord[]> {
    return this.s.types.controls.all().map(toControls);
  }

  async oldestWaiting(type: string): Promise<number | null> {
    return this.s.types.oldestWaiting.get(type)?.created ?? null;
  }

  async claimStartsSince(type: string, since: number): Promise<number> {
    return this.s.types.startsSince.get(type, since)?.count ?? 0;
  }

  async minuteCounts(from: number, type?: string): Promise<MinuteCounts[]> {
    const h = this.s.history;
    return type === undefined ? h.totals.all(from) : h.ofType.all(from, type);
  }

  async schedule(name: string): Promise<ScheduleRecord | null> {
    const row = this.s.schedules.get.get(name);
    return row ? toScheduleRecord(row) : null;
  }

  async schedulePage(after: string, limit: number): Promise<ScheduleRecord[]> {
    return this.s.schedules.page.all(after, limit).map(toScheduleRecord);
  }

  async eventsAfter(after: number, limit: number): Promise<EventRecord[]> {
    return this.s.events.after.all(after, limit);
  }

  async eventBounds(): Promise<{ oldest: number | null; newest: number }> {
    return {
      oldest: this.s.events.oldest.get()?.id ?? null,
      newest: this.s.events.newest.get()?.seq ?? 0,
    };
  }

  async ping(): Promise<void> {
    this.s.types.ping.get();
  }
}

/**
 * One write, inside the open group's transaction (a savepoint of it). It keeps the status each
 * errand has in the store, so that the per-type counts follow every insert, change and delete.
 */
export class SqliteTx extends SqliteReads implements WriteTx {
  /** The stored status of each errand this write has read or written. */
  private readonly stored = new Map<string, string>();

  constructor(
    private readonly w: WriteStatements,
    private readonly counts: TypeCounts,
    private readonly after: Array<() => void>,
    /** Hands a committed event to the driver's listeners. */
    private readonly publish: (event: LoggedEvent) => void,
  ) {
    super(w);
  }

  afterCommit(fn: () => void): void {
    this.after.push(fn);
  }

  private seen(row: ErrandRecord | null): ErrandRecord | null {
    if (row) this.stored.set(row.id, row.status);
    return row;
  }

  async lockErrand(id: string): Promise<ErrandRecord | null> {
    const row = this.w.errands.get.get(id);
    return this.seen(row ? toRecord(row) : null);
  }

  async lockErrands(ids: string[]): Promise<ErrandRecord[]> {
    if (ids.length === 0) return [];
    const rows = this.w.errandWrites.byIds.all(JSON.stringify(ids));
    return rows.map((row) => this.seen(toRecord(row)) as ErrandRecord);
  }

  async nextClaimable(type: string, now: number): Promise<ErrandRecord | null> {
    return (await this.nextClaimables(type, 1, now))[0] ?? null;
  }

  async nextClaimables(type: string, limit: number, now: number): Promise<ErrandRecord[]> {
    const writes = this.w.errandWrites;
    const { allowed, rateLimited } = writes.allowed(type, limit, now);
    if (allowed <= 0) return [];
    const rows = writes.take(allowed).all(type);
    if (rateLimited) this.countStarts(type, rows.length, now);
    return rows.map((row) => this.seen(toRecord(row)) as ErrandRecord);
  }

  /** Numbers `count` claims of a rate-limited type started at `now`, dropping the starts no claim reads again. */
  private countStarts(type: string, count: number, now: number): void {
    const w = this.w.typeWrites;
    const limit = w.countStarts.get(type, count);
    if (!limit) return;
    const newest = limit.claims_started;
    for (let seq = newest - count + 1; seq <= newest; seq++) w.insertStart.run(type, seq, now);
    w.pruneStarts.run(type, newest - limit.rate_max, now - limit.rate_per_ms);
  }

  async rateLimitHold(type: string, now: number): Promise<RateHold | null> {
    return this.w.typeWrites.hold.get(type, now);
  }

  async insertErrand(e: ErrandRecord): Promise<void> {
    this.w.errandWrites.insert.run(toRow(e));
    this.counts.added(e.type, e.status);
    this.stored.set(e.id, e.status);
  }

  async saveErrand(e: ErrandRecord): Promise<void> {
    const before = this.storedStatus(e.id);
    this.w.errandWrites.save.run(
      e.status,
      e.progress,
      e.results,
      e.attempts,
      e.started,
      e.failed,
      e.completed,
      e.finished,
      e.ttlDeadline,
      e.heartbeatDeadline,
      e.runAt,
      e.id,
    );
    if (before !== null) this.counts.moved(e.type, before, e.status);
    this.stored.set(e.id, e.status);
  }

  async extendHeartbeat(id: string, deadline: number): Promise<void> {
    this.w.errandWrites.touch.run(deadline, id);
  }

  async removeErrand(e: ErrandRecord): Promise<void> {
    const before = this.storedStatus(e.id);
    this.w.errandWrites.removeLogs.run(e.id);
    if (this.w.errandWrites.remove.run(e.id).changes > 0 && before !== null) {
      this.counts.removed(e.type, before);
    }
    this.stored.delete(e.id);
  }

  private storedStatus(id: string): string | null {
    return this.stored.get(id) ?? this.w.errandWrites.status.get(id)?.status ?? null;
  }

  async appendLog(errandId: string, entry: LogEntry): Promise<void> {
    this.w.errandWrites.appendLog.run(errandId, entry.severity, entry.message, entry.timestamp);
  }

  async keptLogs(errandId: string, max: number): Promise<LogEntry[]> {
    const logs = this.w.errands.logs.all(errandId);
    if (logs.length <= max) return logs;
    this.w.errandWrites.trimLogs.run(errandId, errandId, max);
    return logs.slice(logs.length - max);
  }

  async errandIdsWhere(filter: ErrandFilter, after: string, limit: number): Promise<string[]> {
    return this.w.errandWrites.ids.read(filter, after, limit).map((r) => r.id);
  }

  async dueIds(now: number, limit: number): Promise<string[]> {
    return this.w.errandWrites.due.all(now, limit).map((r) => r.id);
  }

  async overdueIds(now: number, limit: number): Promise<string[]> {
    return this.w.errandWrites.overdue.all(now, limit).map((r) => r.id);
  }

  async silentIds(now: number, limit: number): Promise<string[]> {
    return this.w.errandWrites.silent.all(now, limit).map((r) => r.id);
  }

  async finishedBefore(before: number, limit: number): Promise<string[]> {
    return this.w.errandWrites.finishedBefore.all(before, limit).map((r) => r.id);
  }

  async insertPipeline(p: PipelineRecord): Promise<void> {
    this.w.pipelineWrites.insert.run(
      p.id,
      p.name,
      p.deleteOnCompleted ? 1 : 0,
      p.status,
      p.started,
      p.ended,
      p.finished,
    );
  }

  async savePipeline(p: PipelineRecord): Promise<void> {
    this.w.pipelineWrites.setStatus.run(p.status, p.ended, p.finished, p.id);
  }

  async insertDependencies(pipelineId: string, edges: Array<[string, string]>): Promise<void> {
    edges.forEach(([target, dependsOn], position) => {
      this.w.pipelineWrites.insertDependency.run(pipelineId, position, target, dependsOn);
    });
  }

  async pipelineProgress(id: string): Promise<PipelineProgress> {
    const row = this.w.pipelineWrites.progress.get(id);
    return {
      anyFailed: row?.failed === 1,
      anyUnfinished: row?.unfinished === 1,
      anyStarted: row?.started === 1,
      anyPending: row?.pending === 1,
    };
  }

  /** From the counts kept in memory: the table is written only at the group's COMMIT. */
  override async countsByTypeAndStatus(): Promise<CountRow[]> {
    return this.counts.rows();
  }

  override async pipelineErrands(id: string): Promise<ErrandRecord[]> {
    const records = await super.pipelineErrands(id);
    for (const record of records) this.seen(record);
    return records;
  }

  async unblockable(completedId: string): Promise<ErrandRecord[]> {
    return this.w.pipelineWrites.unblockable.all(completedId).map((row) => {
      const record = toRecord(row);
      this.seen(record);
      return record;
    });
  }

  async removePipeline(id: string): Promise<void> {
    this.w.pipelineWrites.removeDependencies.run(id);
    this.w.pipelineWrites.remove.run(id);
  }

  async settledBefore(before: number, limit: number): Promise<string[]> {
    return this.w.pipelineWrites.finishedBefore.all(before, limit).map((r) => r.id);
  }

  async appendEvent(
    event: string,
    created: number,
    payload: string,
    detail?: unknown,
  ): Promise<void> {
    // One writer: ids are handed out in commit order, and groups are answered in that order.
    const id = Number(this.w.eventWrites.insert.run(event, created, payload).lastInsertRowid);
    this.after.push(() => this.publish({ id, event, payload, detail }));
  }

  async pruneEvents(before: number, limit: number): Promise<number> {
    return this.w.eventWrites.prune.run(before, limit).changes;
  }

  async idempotencyKey(key: string, since: number) {
    return this.w.keys.get.get(key, since);
  }

  async rememberKey(key: string, request: string, response: string, now: number): Promise<void> {
    this.w.keys.insert.run(key, request, response, now);
  }

  async pruneKeys(before: number, limit: number): Promise<number> {
    return this.w.keys.prune.run(before, limit).changes;
  }

  async typeControl(type: string): Promise<TypeControlsRecord | null> {
    const row = this.w.typeWrites.one.get(type);
    return row ? toControls(row) : null;
  }

  async setTypeControl(c: TypeControlsRecord): Promise<void> {
    const w = this.w.typeWrites;
    const rate = c.rateLimit;
    w.upsert.get(c.type, c.paused ? 1 : 0, c.concurrency, rate?.max ?? null, rate?.perMs ?? null);
    if (rate === null) w.forgetStarts.run(c.type);
  }

  async addMinuteCounts(deltas: MinuteDelta[]): Promise<void> {
    const h = this.w.historyWrites;
    const totals = new Map<number, { completed: number; failed: number }>();
    for (const d of deltas) {
      h.addToType.run(d.type, d.minute, d.completed, d.failed);
      const total = totals.get(d.minute) ?? { completed: 0, failed: 0 };
      total.completed += d.completed;
      total.failed += d.failed;
      totals.set(d.minute, total);
    }
    for (const [minute, total] of totals) h.addToTotal.run(minute, total.completed, total.failed);
  }

  async setWaitingSample(minute: number, waiting: WaitingCount[]): Promise<void> {
    const h = this.w.historyWrites;
    h.clearWaiting.run(minute);
    let total = 0;
    for (const w of waiting) {
      h.setTypeWaiting.run(w.type, minute, w.waiting);
      total += w.waiting;
    }
    h.setTotalWaiting.run(minute, total);
  }

  async pruneMinuteCounts(before: number, limit: number): Promise<number> {
    const h = this.w.historyWrites;
    h.pruneTotals.run(before);
    return h.pruneTypes.run(before, limit).changes;
  }

  async lockSchedule(name: string): Promise<ScheduleRecord | null> {
    return this.schedule(name);
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]> {
    return this.w.scheduleWrites.due.all(now, limit).map(toScheduleRecord);
  }

  async saveSchedule(s: ScheduleRecord): Promise<void> {
    this.w.scheduleWrites.save.run(
      s.name,
      JSON.stringify(s.spec),
      s.paused ? 1 : 0,
      s.nextRunAt,
      s.lastRunAt,
      s.lastErrandId,
      s.created,
      s.updated,
    );
  }

  async removeSchedule(name: string): Promise<boolean> {
    this.w.scheduleWrites.removeTicks.run(name);
    return this.w.scheduleWrites.remove.run(name).changes > 0;
  }

  async recordTick(name: string, tick: number, now: number): Promise<boolean> {
    return this.w.scheduleWrites.recordTick.run(name, tick, now).changes > 0;
  }

  async pruneTicks(before: number, limit: number): Promise<number> {
    return this.w.scheduleWrites.pruneTicks.run(before, limit).changes;
  }

  async probe(now: number): Promise<void> {
    this.w.typeWrites.probe.run(now);
  }
}
