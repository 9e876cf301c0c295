// The storage engine behind the services, named by what the queue needs of it. Services and
// routes speak only to this interface; each engine (src/store/sqlite/, and PostgreSQL later)
// is one implementation, and test/driver.contract.ts is the one suite every engine passes.
//
// Every method is async, so an engine may go over a network. A write runs as one transaction:
// what it reads it may change, and its promise settles once the transaction is durable. Reads
// outside a write see committed data only.

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
  Status,
  TypeControlsRecord,
  WaitingCount,
} from "./records.ts";

/** Errands of a status, of a type, of both; `{}` is every errand. */
export interface ErrandFilter {
  status?: Status | string;
  type?: string;
}

/**
 * Which way a list of errands runs by id (creation order): the oldest first or the newest
 * first. A cursor `after` is in that order: newest first, a page holds ids below it.
 */
export type ListOrder = "oldest" | "newest";

/** Where a page of scheduled errands resumes: just after this errand. */
export interface ScheduledCursor {
  runAt: number;
  id: string;
}

/** What can be read, inside a write (its own changes included) or outside (committed only). */
export interface Reads {
  errand(id: string): Promise<ErrandRecord | null>;
  /** An errand's logs, oldest first. */
  logs(id: string): Promise<LogEntry[]>;
  /** The logs of many errands in one query (a page of a list), by errand id. */
  logsOf(ids: string[]): Promise<Map<string, LogEntry[]>>;
  /**
   * Up to `limit` errands after `after` in `order` (creation order, either way); `after` ""
   * starts at the first.
   */
  errandPage(
    filter: ErrandFilter,
    after: string,
    limit: number,
    order: ListOrder,
  ): Promise<ErrandRecord[]>;
  /**
   * Up to `limit` scheduled errands (waiting for `runAt` or a backoff) after `after`, soonest
   * first: in (runAt, id) order. With `after` null, from the soonest.
   */
  scheduledPage(after: ScheduledCursor | null, limit: number): Promise<ErrandRecord[]>;
  /**
   * Up to `limit` errands whose name starts with `prefix` (compared literally, code point by
   * code point), after `after` in `order`, as errandPage.
   */
  errandPageByName(
    prefix: string,
    after: string,
    limit: number,
    order: ListOrder,
  ): Promise<ErrandRecord[]>;

  pipeline(id: string): Promise<PipelineRecord | null>;
  pipelinePage(
    status: PipelineStatus | undefined,
    after: string,
    limit: number,
  ): Promise<PipelineRecord[]>;
  /** A pipeline's errands, in the order they were sent. */
  pipelineErrands(id: string): Promise<ErrandRecord[]>;
  /** A pipeline's edges by errand names, in the order they were sent. */
  dependencies(pipelineId: string): Promise<Dependency[]>;
  /** The names and results (JSON text, or null) of the errands an errand depends on. */
  dependencyResults(errandId: string): Promise<Array<{ name: string; results: string | null }>>;

  /** Errands stored, by type and status: kept as writes go, never a scan of the errands. */
  countsByTypeAndStatus(): Promise<CountRow[]>;
  typeControls(): Promise<TypeControlsRecord[]>;
  /** When the longest-waiting inactive errand of a type was created, or null. */
  oldestWaiting(type: string): Promise<number | null>;
  /**
   * How many claims of a type started after `since`, as its rate limit counts them: the
   * starts it keeps (claims made while the type had no rate limit are not kept).
   */
  claimStartsSince(type: string, since: number): Promise<number>;

  /**
   * The stored minutes from `from` on, oldest first: summed over all types, or with `type`
   * that type's (waiting 0 in a sampled minute the type had no sample in). A minute neither
   * counted nor sampled has no row.
   */
  minuteCounts(from: number, type?: string): Promise<MinuteCounts[]>;
  schedule(name: string): Promise<ScheduleRecord | null>;
  /** Up to `limit` schedules with a name after `after`, in code point order of their names. */
  schedulePage(after: string, limit: number): Promise<ScheduleRecord[]>;

  /** Up to `limit` events with an id after `after`, in id order. */
  eventsAfter(after: number, limit: number): Promise<EventRecord[]>;
  /** The oldest event kept, and the newest id ever handed out (0 before any). */
  eventBounds(): Promise<{ oldest: number | null; newest: number }>;

  /** Throws unless the database answers a real query. */
  ping(): Promise<void>;
}

/** One transaction. Its changes are kept only if the write's function returns normally. */
export interface WriteTx extends Reads {
  /** Runs fn after the commit that holds this write, never if it is rolled back. */
  afterCommit(fn: () => void): void;

  /** The errand, to be changed in this transaction (saveErrand and removeErrand take it). */
  lockErrand(id: string): Promise<ErrandRecord | null>;
  /**
   * The errands of these ids that exist, in id order, to be changed in this transaction: taken
   * in that order, so two writes that lock many of the same errands never wait on each other.
   */
  lockErrands(ids: string[]): Promise<ErrandRecord[]>;
  /**
   * The next errand of `type` a claim takes, to be changed in this transaction: the highest
   * priority, then the oldest; none while the type is paused, has `concurrency` active, or
   * its rate limit lets no claim start at `now`. The errand answered is taken: under a rate
   * limit it counts as a claim started at `now`.
   */
  nextClaimable(type: string, now: number): Promise<ErrandRecord | null>;
  /**
   * The next `limit` errands of `type` claims take, in the order they take them, to be changed
   * in this transaction: no more than the type's free slots under its concurrency limit, nor
   * than its rate limit lets start at `now`, none while it is paused. The errands answered are
   * taken: under a rate limit each counts as a claim started at `now`. Claims of a type with a
   * rate limit take turns to their commit, so that however many run at once, on however many
   * instances, no window of `perMs` holds more than `max` starts.
   */
  nextClaimables(type: string, limit: number, now: number): Promise<ErrandRecord[]>;
  /**
   * The type's rate limit when it lets no claim start at `now`, with the moment the next may;
   * null when the type has no rate limit, is paused, or may start a claim now.
   */
  rateLimitHold(type: string, now: number): Promise<RateHold | null>;
  insertErrand(errand: ErrandRecord): Promise<void>;
  /** Writes back an errand read by lockErrand or nextClaimable, or inserted. */
  saveErrand(errand: ErrandRecord): Promise<void>;
  /** Moves an active errand's heartbeat deadline on, changing nothing else (a log line). */
  extendHeartbeat(id: string, deadline: number): Promise<void>;
  /** Deletes the errand with its logs. */
  removeErrand(errand: ErrandRecord): Promise<void>;
  appendLog(errandId: string, entry: LogEntry): Promise<void>;
  /** The errand's newest `max` logs; older ones are deleted. */
  keptLogs(errandId: string, max: number): Promise<LogEntry[]>;
  /**
   * The ids of up to `limit` errands of a filter with an id after `after`, in id order: a batch
   * of a bulk change, read from the index alone.
   */
  errandIdsWhere(filter: ErrandFilter, after: string, limit: number): Promise<string[]>;

  /** Scheduled errands whose time has come, soonest first. */
  dueIds(now: number, limit: number): Promise<string[]>;
  /** Active errands past their TTL deadline, soonest first. */
  overdueIds(now: number, limit: number): Promise<string[]>;
  /** Active errands past their heartbeat deadline, soonest first. */
  silentIds(now: number, limit: number): Promise<string[]>;
  /** Completed and failed errands outside pipelines that finished before `before`. */
  finishedBefore(before: number, limit: number): Promise<string[]>;

  insertPipeline(pipeline: PipelineRecord): Promise<void>;
  savePipeline(pipeline: PipelineRecord): Promise<void>;
  /** Edges by errand ids, `[target, dependsOn]`, in the order sent. */
  insertDependencies(pipelineId: string, edges: Array<[string, string]>): Promise<void>;
  pipelineProgress(id: string): Promise<PipelineProgress>;
  /** The blocked dependents of a completed errand whose dependencies have all completed. */
  unblockable(completedId: string): Promise<ErrandRecord[]>;
  /** Deletes the pipeline and its edges (its errands are removed one by one before). */
  removePipeline(id: string): Promise<void>;
  /** Pipelines that settled before `before`, oldest first. */
  settledBefore(before: number, limit: number): Promise<string[]>;

  /**
   * Records an event. Once the write commits, the driver hands it to its event listeners with
   * its place in the log, after every event committed before it; `detail` (the parsed payload)
   * goes with it to this instance's listeners, so they need not parse it again.
   */
  appendEvent(event: string, created: number, payload: string, detail?: unknown): Promise<void>;
  /** Deletes up to `limit` of the oldest events created before `before`; answers how many. */
  pruneEvents(before: number, limit: number): Promise<number>;

  /** The request and response first stored under an idempotency key since `since`. */
  idempotencyKey(key: string, since: number): Promise<{ request: string; response: string } | null>;
  rememberKey(key: string, request: string, response: string, now: number): Promise<void>;
  /** Deletes up to `limit` keys created before `before`; answers how many. */
  pruneKeys(before: number, limit: number): Promise<number>;

  typeControl(type: string): Promise<TypeControlsRecord | null>;
  /** Stores a type's controls; a rate limit cleared forgets the claim starts it kept. */
  setTypeControl(control: TypeControlsRecord): Promise<void>;

  /** Adds counts to the stored minutes, per type and to the minutes' totals. */
  addMinuteCounts(deltas: MinuteDelta[]): Promise<void>;
  /**
   * Stores a sample of the waiting errands in `minute` (the types with any; a type it does not
   * name has none), replacing any earlier sample of the minute; with no types, the minute is
   * sampled with none waiting.
   */
  setWaitingSample(minute: number, waiting: WaitingCount[]): Promise<void>;
  /**
   * Deletes up to `limit` per-type minutes before `before`, oldest first, and every minute's
   * total before it; answers how many per-type minutes went.
   */
  pruneMinuteCounts(before: number, limit: number): Promise<number>;
  /** The schedule, to be changed in this transaction (saveSchedule takes it). */
  lockSchedule(name: string): Promise<ScheduleRecord | null>;
  /**
   * Up to `limit` schedules whose next tick is at or before `now`, soonest first, each to be
   * changed in this transaction; one another write holds is passed over (a second instance
   * sweeping at once takes the others).
   */
  dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]>;
  /** Inserts or replaces the schedule of that name. */
  saveSchedule(schedule: ScheduleRecord): Promise<void>;
  /** Deletes the schedule and its ticks; answers whether there was one. */
  removeSchedule(name: string): Promise<boolean>;
  /**
   * Records that the schedule fired `tick`: false, changing nothing, when that tick was
   * recorded already, by this instance or another (a unique key, so two can never both).
   */
  recordTick(name: string, tick: number, now: number): Promise<boolean>;
  /** Deletes up to `limit` of the oldest ticks recorded before `before`; answers how many. */
  pruneTicks(before: number, limit: number): Promise<number>;

  /** Rewrites one row: a write that must reach the disk (the health check). */
  probe(now: number): Promise<void>;
}

/** An event as the log holds it, with what its writer passed along when it was this instance. */
export interface LoggedEvent extends EventRecord {
  detail?: unknown;
}

/** A write that has run: its result, and when its transaction is durable. */
export interface Staged<T> {
  result: T;
  /** Settles once the transaction is durable; rejects when it never will be. */
  durable: Promise<void>;
}

export interface Driver {
  /** Reads of committed data. */
  readonly reads: Reads;
  /**
   * Runs fn as one transaction; settles once it is durable. fn must await only this
   * transaction's methods: an engine may hold other writes back while it runs. fn may run
   * more than once (PostgreSQL aborts a deadlock's victim, which is then run again afresh):
   * it keeps its state inside, and acts on the world only through tx and afterCommit.
   */
  write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T>;
  /**
   * The same, answered as soon as fn has run, before it is durable: a long-poll claim learns
   * at once whether it took an errand, and hands it over only once `durable` settles.
   */
  stage<T>(fn: (tx: WriteTx) => Promise<T>): Promise<Staged<T>>;
  /**
   * Hears every event committed, by any instance on the same database, in the order of the
   * log: ids increase, none is skipped. An event's id is its place in that log.
   */
  onEvent(listener: (event: LoggedEvent) => void): () => void;
  /** Housekeeping an engine needs now and then (the sweep runs it); optional. */
  maintain?(): Promise<void>;
  /** Whether the store still takes writes and reads. */
  readonly isOpen: boolean;
  /** Whether close() was called: work that can wait for a later run should stop. */
  readonly isClosing: boolean;
  /** Finishes what is in flight, then closes. */
  close(): Promise<void>;
}

/**
 * Runs a write that deletes at most `batch` rows, as its own write, again and again until one
 * deletes fewer or `rounds` have run: a large backlog never holds up other writes, and the
 * rest waits for the next call. Answers how many went.
 */
export async function deleteInBatches(
  driver: Driver,
  remove: (tx: WriteTx, batch: number) => Promise<number>,
  batch: number,
  rounds = Number.POSITIVE_INFINITY,
): Promise<number> {
  let deleted = 0;
  for (let round = 0; round < rounds; round++) {
    const n = await driver.write((tx) => remove(tx, batch));
    deleted += n;
    if (n < batch) break;
  }
  return deleted;
}

/**
 * The least string above every string that starts with `prefix`, in code point order (SQLite's
 * BINARY, PostgreSQL's "C"): its last code point below U+10FFFF moved up by one, the U+10FFFF
 * after it dropped. `name >= prefix AND name < end` is then exactly "starts with", on an index.
 */
export function prefixEnd(prefix: string): string {
  const points = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() ?? 0;
    if (last < 0x10ffff) {
      // A surrogate is no character: stored text never holds one, so step over them.
      points.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  // Only U+10FFFF: every name of at most 1000 UTF-16 units that starts with it sorts below.
  return "\u{10FFFF}".repeat(1001);
}
