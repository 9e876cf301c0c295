// The driver's methods in PostgreSQL: reads on the pool or inside a transaction, and the write
// transaction. Each change locks what it changes: lockErrand and the sweeps take their rows
// FOR UPDATE (the sweeps SKIP LOCKED, so instances share the work and each row is done once);
// a claim of a type with a concurrency limit holds that type's advisory lock to its commit.

import type { SQL } from "bun";
import {
  type ErrandFilter,
  type ListOrder,
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
  Status,
  TypeControlsRecord,
  WaitingCount,
} from "../records.ts";

type Row = Record<string, unknown>;

/**
 * PostgreSQL text cannot hold U+0000, which SQLite keeps and a client may send (in a name, a
 * log line, an id in a path): without this, such a request failed with a 503. Every string
 * goes in with U+0000 written as ESC "0" and ESC itself as ESC "1", and comes back decoded, so
 * any string is stored, compared and answered exactly as sent; a string with neither is
 * stored as it is.
 */
const ESC = "\uFFFF";
const encodeText = (text: string): string =>
  text.includes("\u0000") || text.includes(ESC)
    ? text.replaceAll(ESC, `${ESC}1`).replaceAll("\u0000", `${ESC}0`)
    : text;
const decodeText = (text: string): string =>
  text.replace(/\uFFFF([01])/g, (_, c: string) => (c === "0" ? "\u0000" : ESC));

/** A query as the engine runs it: its string parameters encoded, its rows' strings decoded. */
// biome-ignore lint/suspicious/noExplicitAny: rows are read field by field, as Bun's SQL types them
type Query = (strings: TemplateStringsArray, ...values: unknown[]) => Promise<any>;

function textSafe(sql: SQL): Query {
  return async (strings, ...values) => {
    const rows: Row[] = await sql(
      strings,
      ...values.map((value) => (typeof value === "string" ? encodeText(value) : value)),
    );
    for (const row of rows) {
      for (const key in row) {
        const value = row[key];
        if (typeof value === "string" && value.includes(ESC)) row[key] = decodeText(value);
      }
    }
    return rows;
  };
}

/** int8 columns come back as text: every one we keep is a safe integer. */
const num = (value: unknown): number => Number(value);
const numOrNull = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(value);

export function toRecord(row: Row): ErrandRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    type: row.type as string,
    status: row.status as Status,
    priority: num(row.priority),
    options: JSON.parse(row.options as string),
    data: (row.data as string | null) ?? null,
    results: (row.results as string | null) ?? null,
    created: num(row.created),
    progress: Number(row.progress),
    attempts: Number(row.attempts),
    started: numOrNull(row.started),
    failed: numOrNull(row.failed),
    completed: numOrNull(row.completed),
    finished: numOrNull(row.finished),
    ttlDeadline: numOrNull(row.ttl_deadline),
    heartbeatDeadline: numOrNull(row.heartbeat_deadline),
    runAt: numOrNull(row.run_at),
    pipeline: (row.pipeline as string | null) ?? null,
  };
}

function toPipeline(row: Row): PipelineRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    deleteOnCompleted: row.delete_on_completed === true,
    status: row.status as PipelineStatus,
    started: num(row.started),
    ended: numOrNull(row.ended),
    finished: numOrNull(row.finished),
  };
}

function toSchedule(row: Row): ScheduleRecord {
  return {
    name: row.name as string,
    spec: JSON.parse(row.spec as string),
    paused: row.paused === true,
    nextRunAt: numOrNull(row.next_run_at),
    lastRunAt: numOrNull(row.last_run_at),
    lastErrandId: (row.last_errand_id as string | null) ?? null,
    created: num(row.created),
    updated: num(row.updated),
  };
}

const toLog = (row: Row): LogEntry => ({
  severity: row.severity as LogEntry["severity"],
  message: row.message as string,
  timestamp: num(row.timestamp),
});

const ids = (rows: Row[]): string[] => rows.map((row) => row.id as string);

function toControls(row: Row): TypeControlsRecord {
  return {
    type: row.type as string,
    paused: row.paused === true,
    concurrency: numOrNull(row.concurrency),
    rateLimit:
      row.rate_max === null || row.rate_per_ms === null
        ? null
        : { max: num(row.rate_max), perMs: num(row.rate_per_ms) },
  };
}

export class PgReads implements Reads {
  protected sql: Query;

  constructor(sql: SQL) {
    this.sql = textSafe(sql);
  }

  async errand(id: string): Promise<ErrandRecord | null> {
    const [row] = await this.sql`SELECT * FROM errands WHERE id = ${id}`;
    return row ? toRecord(row) : null;
  }

  async logs(id: string): Promise<LogEntry[]> {
    const rows = await this.sql`
      SELECT severity, message, timestamp FROM errand_logs WHERE errand_id = ${id} ORDER BY id`;
    return rows.map(toLog);
  }

  async logsOf(errandIds: string[]): Promise<Map<string, LogEntry[]>> {
    const byErrand = new Map<string, LogEntry[]>();
    if (errandIds.length === 0) return byErrand;
    const rows = await this.sql`
      SELECT errand_id, severity, message, timestamp FROM errand_logs
       WHERE errand_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(errandIds)}::text::jsonb))
       ORDER BY errand_id, id`;
    for (const row of rows) {
      const logs = byErrand.get(row.errand_id);
      if (logs) logs.push(toLog(row));
      else byErrand.set(row.errand_id, [toLog(row)]);
    }
    return byErrand;
  }

  /**
   * Each shape of the filter reads a range of its own index (see errands_type_status), forwards
   * or, newest first, backwards.
   */
  async errandPage(
    filter: ErrandFilter,
    after: string,
    limit: number,
    order: ListOrder,
  ): Promise<ErrandRecord[]> {
    if (order === "newest") return this.newestErrands(filter, after, limit);
    const { status, type } = filter;
    const rows =
      type === undefined
        ? status === undefined
          ? await this.sql`SELECT * FROM errands WHERE id > ${after} ORDER BY id LIMIT ${limit}`
          : await this.sql`SELECT * FROM errands WHERE status = ${status} AND id > ${after}
                            ORDER BY id LIMIT ${limit}`
        : status === undefined
          ? await this.sql`SELECT * FROM errands WHERE type = ${type} AND id > ${after}
                            ORDER BY id LIMIT ${limit}`
          : await this.sql`SELECT * FROM errands WHERE type = ${type} AND status = ${status}
                              AND id > ${after} ORDER BY id LIMIT ${limit}`;
    return rows.map(toRecord);
  }

  /**
   * errandPage newest first. Its first page has no cursor: no text sorts after every id in
   * every collation, as "" sorts before them.
   */
  private async newestErrands(
    filter: ErrandFilter,
    after: string,
    limit: number,
  ): Promise<ErrandRecord[]> {
    const { status, type } = filter;
    let rows: Row[];
    if (after === "") {
      rows =
        type === undefined
          ? status === undefined
            ? await this.sql`SELECT * FROM errands ORDER BY id DESC LIMIT ${limit}`
            : await this.sql`SELECT * FROM errands WHERE status = ${status}
                              ORDER BY id DESC LIMIT ${limit}`
          : status === undefined
            ? await this.sql`SELECT * FROM errands WHERE type = ${type}
                              ORDER BY id DESC LIMIT ${limit}`
            : await this.sql`SELECT * FROM errands WHERE type = ${type} AND status = ${status}
                              ORDER BY id DESC LIMIT ${limit}`;
    } else {
      rows =
        type === undefined
          ? status === undefined
            ? await this.sql`SELECT * FROM errands WHERE id < ${after}
                              ORDER BY id DESC LIMIT ${limit}`
            : await this.sql`SELECT * FROM errands WHERE status = ${status} AND id < ${after}
                              ORDER BY id DESC LIMIT ${limit}`
          : status === undefined
            ? await this.sql`SELECT * FROM errands WHERE type = ${type} AND id < ${after}
                              ORDER BY id DESC LIMIT ${limit}`
            : await this.sql`SELECT * FROM errands WHERE type = ${type} AND status = ${status}
                                AND id < ${after} ORDER BY id DESC LIMIT ${limit}`;
    }
    return rows.map(toRecord);
  }

  async scheduledPage(after: ScheduledCursor | null, limit: number): Promise<ErrandRecord[]> {
    // Before every errand: runAt is never negative.
    const from = after ?? { runAt: -1, id: "" };
    const rows = await this.sql`
      SELECT * FROM errands WHERE status = 'scheduled' AND (run_at, id) > (${from.runAt}, ${from.id})
       ORDER BY run_at, id LIMIT ${limit}`;
    return rows.map(toRecord);
  }

  async errandPageByName(
    prefix: string,
    after: string,
    limit: number,
    order: ListOrder,
  ): Promise<ErrandRecord[]> {
    // A range of errands_name, in code point order (see prefixEnd); newest first, the first
    // page has no cursor (see newestErrands).
    const end = prefixEnd(prefix);
    const rows =
      order === "oldest"
        ? await this.sql`
            SELECT * FROM errands
             WHERE name COLLATE "C" >= ${prefix} AND name COLLATE "C" < ${end} AND id > ${after}
             ORDER BY id LIMIT ${limit}`
        : after === ""
          ? await this.sql`
              SELECT * FROM errands
               WHERE name COLLATE "C" >= ${prefix} AND name COLLATE "C" < ${end}
               ORDER BY id DESC LIMIT ${limit}`
          : await this.sql`
              SELECT * FROM errands
               WHERE name COLLATE "C" >= ${prefix} AND name COLLATE "C" < ${end} AND id < ${after}
               ORDER BY id DESC LIMIT ${limit}`;
    return rows.map(toRecord);
  }

  async pipeline(id: string): Promise<PipelineRecord | null> {
    const [row] = await this.sql`SELECT * FROM pipelines WHERE id = ${id}`;
    return row ? toPipeline(row) : null;
  }

  async pipelinePage(
    status: PipelineStatus | undefined,
    after: string,
    limit: number,
  ): Promise<PipelineRecord[]> {
    const rows =
      status === undefined
        ? await this.sql`SELECT * FROM pipelines WHERE id > ${after} ORDER BY id LIMIT ${limit}`
        : await this.sql`SELECT * FROM pipelines WHERE status = ${status} AND id > ${after}
                          ORDER BY id LIMIT ${limit}`;
    return rows.map(toPipeline);
  }

  async pipelineErrands(id: string): Promise<ErrandRecord[]> {
    const rows = await this.sql`SELECT * FROM errands WHERE pipeline = ${id} ORDER BY id`;
    return rows.map(toRecord);
  }

  async dependencies(pipelineId: string): Promise<Dependency[]> {
    const rows = await this.sql`
      SELECT (SELECT name FROM errands WHERE id = d.target) AS target,
             (SELECT name FROM errands WHERE id = d.depends_on) AS "dependsOn"
        FROM pipeline_dependencies d WHERE d.pipeline = ${pipelineId} ORDER BY d.position`;
    return rows.map((row: Row) => ({
      target: row.target as string,
      dependsOn: row.dependsOn as string,
    }));
  }

  async dependencyResults(errandId: string) {
    const rows = await this.sql`
      SELECT name, results FROM errands
       WHERE id IN (SELECT depends_on FROM pipeline_dependencies WHERE target = ${errandId})
       ORDER BY id`;
    return rows.map((row: Row) => ({
      name: row.name as string,
      results: row.results as string | null,
    }));
  }

  async countsByTypeAndStatus(): Promise<CountRow[]> {
    const rows = await this.sql`
      SELECT type, status, sum(count)::float8 AS count FROM (
          SELECT type, status, count FROM type_counts
          UNION ALL SELECT type, status, delta FROM type_count_deltas) c
       GROUP BY type, status HAVING sum(count) > 0 ORDER BY type, status`;
    return rows.map((row: Row) => ({
      type: row.type as string,
      status: row.status as string,
      count: Number(row.count),
    }));
  }

  async typeControls(): Promise<TypeControlsRecord[]> {
    const rows = await this.sql`
      SELECT type, paused, concurrency, rate_max, rate_per_ms FROM types ORDER BY type`;
    return rows.map(toControls);
  }

  async claimStartsSince(type: string, since: number): Promise<number> {
    // The type's kept starts, one range of the key: at most about its limit's worth.
    const [row] = await this.sql`
      SELECT count(*) AS count FROM claim_starts WHERE type = ${type} AND started > ${since}`;
    return num(row?.count ?? 0);
  }

  async oldestWaiting(type: string): Promise<number | null> {
    // On errands_claim: one seek per distinct waiting priority of the type.
    const [row] = await this.sql`
      WITH RECURSIVE level (priority) AS (
          SELECT max(priority) FROM errands WHERE type = ${type} AND status = 'inactive'
        UNION ALL
          SELECT (SELECT max(priority) FROM errands
                   WHERE type = ${type} AND status = 'inactive' AND priority < level.priority)
            FROM level WHERE level.priority IS NOT NULL)
      SELECT min((SELECT min(created) FROM errands
                   WHERE type = ${type} AND status = 'inactive' AND priority = level.priority))
             AS created
        FROM level WHERE level.priority IS NOT NULL`;
    return numOrNull(row?.created);
  }

  async minuteCounts(from: number, type?: string): Promise<MinuteCounts[]> {
    // A range of minute_totals' key; with a type, each minute with one seek of its row (a
    // sampled minute without one had none of the type waiting).
    const rows =
      type === undefined
        ? await this.sql`
            SELECT minute, completed, failed, waiting FROM minute_totals
             WHERE minute >= ${from} ORDER BY minute`
        : await this.sql`
            SELECT t.minute, coalesce(c.completed, 0) AS completed,
                   coalesce(c.failed, 0) AS failed,
                   CASE WHEN t.waiting IS NULL THEN NULL ELSE coalesce(c.waiting, 0) END AS waiting
              FROM minute_totals t
              LEFT JOIN minute_counts c ON c.type = ${type} AND c.minute = t.minute
             WHERE t.minute >= ${from} ORDER BY t.minute`;
    return rows.map((row: Row) => ({
      minute: num(row.minute),
      completed: num(row.completed),
      failed: num(row.failed),
      waiting: numOrNull(row.waiting),
    }));
  }

  async schedule(name: string): Promise<ScheduleRecord | null> {
    const [row] = await this.sql`SELECT * FROM schedules WHERE name = ${name}`;
    return row ? toSchedule(row) : null;
  }

  async schedulePage(after: string, limit: number): Promise<ScheduleRecord[]> {
    const rows = await this.sql`
      SELECT * FROM schedules WHERE name > ${after} ORDER BY name LIMIT ${limit}`;
    return rows.map(toSchedule);
  }

  async eventsAfter(after: number, limit: number): Promise<EventRecord[]> {
    const rows = await this.sql`
      SELECT id, event, payload FROM events WHERE id > ${after} ORDER BY id LIMIT ${limit}`;
    return rows.map((row: Row) => ({
      id: num(row.id),
      event: row.event as string,
      payload: row.payload as string,
    }));
  }

  async eventBounds(): Promise<{ oldest: number | null; newest: number }> {
    const [row] = await this.sql`
      SELECT (SELECT min(id) FROM events) AS oldest, (SELECT newest FROM event_head) AS newest`;
    return { oldest: numOrNull(row?.oldest), newest: num(row?.newest ?? 0) };
  }

  async ping(): Promise<void> {
    await this.sql`SELECT 1`;
  }
}

/** One write transaction. It keeps the per-type count changes it makes, written at its end. */
export class PgTx extends PgReads implements WriteTx {
  /** The stored status of each errand this write has read or written. */
  private readonly stored = new Map<string, string>();
  /** Count changes by type and status, appended as deltas before the commit. */
  private readonly deltas = new Map<string, { type: string; status: string; delta: number }>();
  /** Whether this write recorded events, for the sequencer. */
  eventsAppended = false;
  /** Types this write's claims found without a rate limit, or paused. */
  private readonly unlimited = new Set<string>();
  /** Writes whose answer nothing reads, sent with the next query (pipelined, one round trip). */
  private readonly queued: Array<() => Promise<unknown>> = [];
  /** Queues a write: it goes out, in order, just before the next query or the commit. */
  private readonly later: (strings: TemplateStringsArray, ...values: unknown[]) => Promise<void>;

  constructor(
    sql: SQL,
    private readonly after: Array<() => void>,
  ) {
    super(sql);
    const direct = this.sql;
    this.later = async (strings, ...values) => {
      this.queued.push(() => direct(strings, ...values));
    };
    // Every query first sends the queued writes; all of them go in one round trip, in order.
    this.sql = async (strings, ...values) => {
      if (this.queued.length === 0) return direct(strings, ...values);
      const writes = this.queued.splice(0).map((send) => send());
      const [rows] = await Promise.all([direct(strings, ...values), ...writes]);
      return rows;
    };
  }

  /** Sends what is queued; the last step before the commit. */
  async drain(): Promise<void> {
    if (this.queued.length > 0) await Promise.all(this.queued.splice(0).map((send) => send()));
  }

  afterCommit(fn: () => void): void {
    this.after.push(fn);
  }

  private seen(record: ErrandRecord | null): ErrandRecord | null {
    if (record) this.stored.set(record.id, record.status);
    return record;
  }

  private count(type: string, status: string, delta: number): void {
    const key = `${status}\u0000${type}`;
    const change = this.deltas.get(key);
    if (change) change.delta += delta;
    else this.deltas.set(key, { type, status, delta });
  }

  /** The counts as this write leaves them: the stored ones and its own changes. */
  override async countsByTypeAndStatus(): Promise<CountRow[]> {
    const byKey = new Map<string, CountRow>();
    for (const row of await super.countsByTypeAndStatus()) {
      byKey.set(`${row.status}\u0000${row.type}`, { ...row });
    }
    for (const [key, change] of this.deltas) {
      const row = byKey.get(key) ?? { type: change.type, status: change.status, count: 0 };
      row.count += change.delta;
      byKey.set(key, row);
    }
    return [...byKey.values()]
      .filter((row) => row.count > 0)
      .sort((a, b) =>
        a.type < b.type
          ? -1
          : a.type > b.type
            ? 1
            : a.status < b.status
              ? -1
              : a.status > b.status
                ? 1
                : 0,
      );
  }

  /** Appends the count changes of this write; runs last, inside the transaction. */
  async flushCounts(): Promise<void> {
    const changes = [...this.deltas.values()].filter((c) => c.delta !== 0);
    if (changes.length === 0) return this.drain();
    await this.later`
      INSERT INTO type_count_deltas (type, status, delta)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(changes)}::text::jsonb)
        AS c(type text, status text, delta integer)`;
    await this.drain();
  }

  async lockErrand(id: string): Promise<ErrandRecord | null> {
    const [row] = await this.sql`SELECT * FROM errands WHERE id = ${id} FOR UPDATE`;
    return this.seen(row ? toRecord(row) : null);
  }

  async lockErrands(errandIds: string[]): Promise<ErrandRecord[]> {
    if (errandIds.length === 0) return [];
    // Sorted, then locked in that order (PostgreSQL locks the rows as the sort hands them out).
    const rows = await this.sql`
      SELECT * FROM errands
       WHERE id IN (SELECT jsonb_array_elements_text(${JSON.stringify(errandIds)}::text::jsonb))
       ORDER BY id FOR UPDATE OF errands`;
    return rows.map((row: Row) => this.seen(toRecord(row)) as ErrandRecord);
  }

  async nextClaimable(type: string, now: number): Promise<ErrandRecord | null> {
    const [first] = await this.nextClaimables(type, 1, now);
    return first ?? null;
  }

  async nextClaimables(type: string, limit: number, now: number): Promise<ErrandRecord[]> {
    // The common case in one statement: a type with no controls (no pause, no limit).
    const free = await this.sql`
      SELECT * FROM errands WHERE type = ${type} AND status = 'inactive'
         AND NOT EXISTS (SELECT 1 FROM types
                          WHERE types.type = ${type}
                            AND (paused OR concurrency IS NOT NULL OR rate_max IS NOT NULL))
       ORDER BY priority DESC, created, id LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
    if (free.length > 0) return free.map((row: Row) => this.seen(toRecord(row)) as ErrandRecord);
    const [control] = await this.sql`
      SELECT paused, concurrency, rate_max FROM types WHERE type = ${type}`;
    // A rateLimitHold of this write then need not ask again.
    if (!control || control.paused === true || control.rate_max === null) this.unlimited.add(type);
    if (!control || control.paused === true) return [];
    if (control.concurrency === null && control.rate_max === null) return [];
    // Claims of a limited type take turns to their commit, so each counts the others' claims
    // and starts.
    await this.sql`SELECT pg_advisory_xact_lock(hashtextextended(${`errands type ${type}`}, 0))`;
    // The free slots and the rate limit's allowance, counted under that turn, bound how many
    // are taken. Claim claims_started + j may start now if claim claims_started + j - rate_max
    // started rate_per_ms ago or more (or is not kept): the first kept start of those still in
    // the window bounds the take, one key read per errand asked, and never more than rate_max
    // at once (beyond, a claim would wait on one of its own batch).
    const rows = await this.sql`
      WITH slots AS (
        SELECT GREATEST(0, LEAST(${limit}::int,
                 coalesce(t.concurrency - (
                   SELECT count(*) FROM errands WHERE type = ${type} AND status = 'active'),
                   ${limit}::int),
                 coalesce((
                   SELECT min(s.seq) FROM claim_starts s
                    WHERE s.type = t.type
                      AND s.seq BETWEEN t.claims_started + 1 - t.rate_max
                                    AND t.claims_started + ${limit}::int - t.rate_max
                      AND s.started > ${now}::bigint - t.rate_per_ms)
                   - (t.claims_started + 1 - t.rate_max), t.rate_max))) AS n
          FROM types t WHERE t.type = ${type} AND NOT t.paused)
      SELECT * FROM errands WHERE type = ${type} AND status = 'inactive'
       ORDER BY priority DESC, created, id
       LIMIT coalesce((SELECT n FROM slots), 0) FOR UPDATE SKIP LOCKED`;
    if (rows.length > 0) await this.countStarts(type, rows.length, now);
    return rows.map((row: Row) => this.seen(toRecord(row)) as ErrandRecord);
  }

  /**
   * Numbers `count` claims of a type started at `now` when it has a rate limit (nothing
   * otherwise), dropping the starts no claim reads again: older than the newest rate_max and
   * out of the window. Sent with the next query.
   */
  private async countStarts(type: string, count: number, now: number): Promise<void> {
    await this.later`
      WITH counted AS (
        UPDATE types SET claims_started = claims_started + ${count}::int
         WHERE type = ${type} AND rate_max IS NOT NULL
        RETURNING claims_started, rate_max, rate_per_ms),
      pruned AS (
        DELETE FROM claim_starts s USING counted c
         WHERE s.type = ${type} AND s.seq <= c.claims_started - c.rate_max
           AND s.started <= ${now}::bigint - c.rate_per_ms)
      INSERT INTO claim_starts (type, seq, started)
      SELECT ${type}, g, ${now}::bigint
        FROM counted, generate_series(counted.claims_started - ${count}::int + 1,
                                      counted.claims_started) g`;
  }

  async rateLimitHold(type: string, now: number): Promise<RateHold | null> {
    // Known already when this write's claim found the type without a rate limit.
    if (this.unlimited.has(type)) return null;
    const [row] = await this.sql`
      SELECT t.rate_max, t.rate_per_ms, s.started + t.rate_per_ms AS until
        FROM types t
        JOIN claim_starts s ON s.type = t.type AND s.seq = t.claims_started + 1 - t.rate_max
       WHERE t.type = ${type} AND NOT t.paused AND s.started > ${now}::bigint - t.rate_per_ms`;
    return row
      ? { max: num(row.rate_max), perMs: num(row.rate_per_ms), until: num(row.until) }
      : null;
  }

  async insertErrand(e: ErrandRecord): Promise<void> {
    await this.later`
      INSERT INTO errands (id, name, type, status, priority, options, data, results, created,
                           progress, attempts, started, failed, completed, finished, ttl_deadline,
                           heartbeat_deadline, run_at, pipeline)
      VALUES (${e.id}, ${e.name}, ${e.type}, ${e.status}, ${e.priority}, ${JSON.stringify(e.options)},
              ${e.data}, ${e.results}, ${e.created}, ${e.progress}, ${e.attempts}, ${e.started},
              ${e.failed}, ${e.completed}, ${e.finished}, ${e.ttlDeadline},
              ${e.heartbeatDeadline}, ${e.runAt}, ${e.pipeline})`;
    this.count(e.type, e.status, 1);
    this.stored.set(e.id, e.status);
  }

  async saveErrand(e: ErrandRecord): Promise<void> {
    const before = await this.storedStatus(e.id);
    await this.later`
      UPDATE errands SET status = ${e.status}, progress = ${e.progress}, results = ${e.results},
             attempts = ${e.attempts}, started = ${e.started}, failed = ${e.failed},
             completed = ${e.completed}, finished = ${e.finished}, ttl_deadline = ${e.ttlDeadline},
             heartbeat_deadline = ${e.heartbeatDeadline}, run_at = ${e.runAt}
       WHERE id = ${e.id}`;
    if (before !== null && before !== e.status) {
      this.count(e.type, before, -1);
      this.count(e.type, e.status, 1);
    }
    this.stored.set(e.id, e.status);
  }

  async extendHeartbeat(id: string, deadline: number): Promise<void> {
    await this.later`UPDATE errands SET heartbeat_deadline = ${deadline} WHERE id = ${id}`;
  }

  async removeErrand(e: ErrandRecord): Promise<void> {
    const before = await this.storedStatus(e.id);
    await this.sql`DELETE FROM errand_logs WHERE errand_id = ${e.id}`;
    const removed = await this.sql`DELETE FROM errands WHERE id = ${e.id} RETURNING id`;
    if (removed.length > 0 && before !== null) this.count(e.type, before, -1);
    this.stored.delete(e.id);
  }

  private async storedStatus(id: string): Promise<string | null> {
    const known = this.stored.get(id);
    if (known !== undefined) return known;
    const [row] = await this.sql`SELECT status FROM errands WHERE id = ${id}`;
    return (row?.status as string | undefined) ?? null;
  }

  async appendLog(errandId: string, entry: LogEntry): Promise<void> {
    await this.later`
      INSERT INTO errand_logs (errand_id, severity, message, timestamp)
      VALUES (${errandId}, ${entry.severity}, ${entry.message}, ${entry.timestamp})`;
  }

  async keptLogs(errandId: string, max: number): Promise<LogEntry[]> {
    const rows = await this.sql`
      SELECT id, severity, message, timestamp FROM errand_logs
       WHERE errand_id = ${errandId} ORDER BY id`;
    if (rows.length <= max) return rows.map(toLog);
    const firstKept = rows[rows.length - max].id;
    await this.sql`DELETE FROM errand_logs WHERE errand_id = ${errandId} AND id < ${firstKept}`;
    return rows.slice(rows.length - max).map(toLog);
  }

  // Not locked here: lockErrand takes each row, and the service checks it still matches.
  async errandIdsWhere(filter: ErrandFilter, after: string, limit: number): Promise<string[]> {
    const { status, type } = filter;
    const rows =
      type === undefined
        ? status === undefined
          ? await this.sql`SELECT id FROM errands WHERE id > ${after} ORDER BY id LIMIT ${limit}`
          : await this.sql`SELECT id FROM errands WHERE status = ${status} AND id > ${after}
                            ORDER BY id LIMIT ${limit}`
        : status === undefined
          ? await this.sql`SELECT id FROM errands WHERE type = ${type} AND id > ${after}
                            ORDER BY id LIMIT ${limit}`
          : await this.sql`SELECT id FROM errands WHERE type = ${type} AND status = ${status}
                              AND id > ${after} ORDER BY id LIMIT ${limit}`;
    return ids(rows);
  }

  async dueIds(now: number, limit: number): Promise<string[]> {
    return ids(
      await this.sql`SELECT id FROM errands WHERE status = 'scheduled' AND run_at <= ${now}
                      ORDER BY run_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
    );
  }

  async overdueIds(now: number, limit: number): Promise<string[]> {
    return ids(
      await this.sql`SELECT id FROM errands WHERE ttl_deadline <= ${now}
                      ORDER BY ttl_deadline LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
    );
  }

  async silentIds(now: number, limit: number): Promise<string[]> {
    return ids(
      await this.sql`SELECT id FROM errands WHERE heartbeat_deadline <= ${now}
                      ORDER BY heartbeat_deadline LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
    );
  }

  async finishedBefore(before: number, limit: number): Promise<string[]> {
    return ids(
      await this.sql`SELECT id FROM errands
                      WHERE finished < ${before} AND finished IS NOT NULL AND pipeline IS NULL
                        AND status IN ('completed', 'failed')
                      ORDER BY finished LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
    );
  }

  async insertPipeline(p: PipelineRecord): Promise<void> {
    await this.later`
      INSERT INTO pipelines (id, name, delete_on_completed, status, started, ended, finished)
      VALUES (${p.id}, ${p.name}, ${p.deleteOnCompleted}, ${p.status}, ${p.started}, ${p.ended},
              ${p.finished})`;
  }

  async savePipeline(p: PipelineRecord): Promise<void> {
    await this.later`
      UPDATE pipelines SET status = ${p.status}, ended = ${p.ended}, finished = ${p.finished}
       WHERE id = ${p.id}`;
  }

  async insertDependencies(pipelineId: string, edges: Array<[string, string]>): Promise<void> {
    if (edges.length === 0) return;
    const rows = edges.map(([target, dependsOn], position) => ({ position, target, dependsOn }));
    await this.later`
      INSERT INTO pipeline_dependencies (pipeline, position, target, depends_on)
      SELECT ${pipelineId}, e.position, e.target, e."dependsOn"
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb)
          AS e(position integer, target text, "dependsOn" text)`;
  }

  /**
   * Writes that decide from the statuses of a pipeline's errands (unblocking a dependent,
   * settling the pipeline) take turns on it to their commit, so each reads the others'
   * changes. Without it, two dependencies completed at once each saw the other unfinished:
   * their dependent stayed blocked for good, or the pipeline active with every errand done.
   */
  private async pipelineTurn(id: string): Promise<void> {
    await this.sql`SELECT pg_advisory_xact_lock(hashtextextended(${`errands pipeline ${id}`}, 0))`;
  }

  async pipelineProgress(id: string): Promise<PipelineProgress> {
    await this.pipelineTurn(id);
    const [row] = await this.sql`
      SELECT
        EXISTS (SELECT 1 FROM errands WHERE pipeline = ${id} AND status = 'failed') AS failed,
        EXISTS (SELECT 1 FROM errands WHERE pipeline = ${id} AND status <> 'completed')
          AS unfinished,
        EXISTS (SELECT 1 FROM errands WHERE pipeline = ${id}
                   AND (status IN ('active', 'completed') OR started IS NOT NULL)) AS started,
        EXISTS (SELECT 1 FROM errands WHERE pipeline = ${id}
                   AND status IN ('inactive', 'active', 'scheduled')) AS pending`;
    return {
      anyFailed: row?.failed === true,
      anyUnfinished: row?.unfinished === true,
      anyStarted: row?.started === true,
      anyPending: row?.pending === true,
    };
  }

  async unblockable(completedId: string): Promise<ErrandRecord[]> {
    const [completed] = await this.sql`SELECT pipeline FROM errands WHERE id = ${completedId}`;
    if (completed?.pipeline) await this.pipelineTurn(completed.pipeline);
    const rows = await this.sql`
      SELECT t.* FROM errands t
       WHERE t.id IN (SELECT target FROM pipeline_dependencies WHERE depends_on = ${completedId})
         AND t.status = 'blocked'
         AND NOT EXISTS (
           SELECT 1 FROM pipeline_dependencies f JOIN errands d ON d.id = f.depends_on
            WHERE f.target = t.id AND d.status <> 'completed')
       ORDER BY t.id FOR UPDATE OF t`;
    return rows.map((row: Row) => this.seen(toRecord(row)) as ErrandRecord);
  }

  override async pipelineErrands(id: string): Promise<ErrandRecord[]> {
    // Locked, as lockErrand locks: a pipeline being deleted read its errands unlocked, so a
    // concurrent write to one of them (a log line, a claim) committed in between, leaving its
    // log without its errand and the per-type counts off by the status it changed.
    const rows = await this
      .sql`SELECT * FROM errands WHERE pipeline = ${id} ORDER BY id FOR UPDATE`;
    return rows.map((row: Row) => this.seen(toRecord(row)) as ErrandRecord);
  }

  async removePipeline(id: string): Promise<void> {
    await this.sql`DELETE FROM pipeline_dependencies WHERE pipeline = ${id}`;
    await this.sql`DELETE FROM pipelines WHERE id = ${id}`;
  }

  async settledBefore(before: number, limit: number): Promise<string[]> {
    return ids(
      await this.sql`SELECT id FROM pipelines WHERE finished < ${before}
                      ORDER BY finished LIMIT ${limit} FOR UPDATE SKIP LOCKED`,
    );
  }

  async appendEvent(event: string, created: number, payload: string): Promise<void> {
    // No place yet: the sequencer gives it one once this transaction has committed.
    await this
      .sql`INSERT INTO events (event, created, payload) VALUES (${event}, ${created}, ${payload})`;
    this.eventsAppended = true;
  }

  async pruneEvents(before: number, limit: number): Promise<number> {
    // Placed events only, oldest place first: ids grow with time, as on SQLite.
    const rows = await this.sql`
      DELETE FROM events WHERE seq IN (
        SELECT seq FROM events WHERE id IS NOT NULL AND created < ${before}
         ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING seq`;
    return rows.length;
  }

  async idempotencyKey(key: string, since: number) {
    // Writes with one key take turns to their commit: a retry waits for the first, then
    // finds its answer, instead of both finding nothing and both creating.
    await this.sql`SELECT pg_advisory_xact_lock(hashtextextended(${`errands key ${key}`}, 0))`;
    const [row] = await this.sql`
      SELECT request, response FROM idempotency_keys WHERE key = ${key} AND created >= ${since}`;
    return row ? { request: row.request as string, response: row.response as string } : null;
  }

  async rememberKey(key: string, request: string, response: string, now: number): Promise<void> {
    await this.later`
      INSERT INTO idempotency_keys (key, request, response, created)
      VALUES (${key}, ${request}, ${response}, ${now})
      ON CONFLICT (key) DO UPDATE
        SET request = excluded.request, response = excluded.response, created = excluded.created`;
  }

  async pruneKeys(before: number, limit: number): Promise<number> {
    const rows = await this.sql`
      DELETE FROM idempotency_keys WHERE key IN (
        SELECT key FROM idempotency_keys WHERE created < ${before}
         ORDER BY created LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING key`;
    return rows.length;
  }

  async typeControl(type: string): Promise<TypeControlsRecord | null> {
    const [row] = await this.sql`
      SELECT type, paused, concurrency, rate_max, rate_per_ms FROM types WHERE type = ${type}`;
    return row ? toControls(row) : null;
  }

  async setTypeControl(c: TypeControlsRecord): Promise<void> {
    const rate = c.rateLimit;
    this.unlimited.delete(c.type);
    await this.later`
      INSERT INTO types (type, paused, concurrency, rate_max, rate_per_ms)
      VALUES (${c.type}, ${c.paused}, ${c.concurrency}, ${rate?.max ?? null},
              ${rate?.perMs ?? null})
      ON CONFLICT (type) DO UPDATE SET paused = excluded.paused,
        concurrency = excluded.concurrency, rate_max = excluded.rate_max,
        rate_per_ms = excluded.rate_per_ms`;
    if (rate === null) await this.later`DELETE FROM claim_starts WHERE type = ${c.type}`;
  }

  /**
   * Rows are locked in one order by every write of the history, (type, minute) first, then the
   * totals by minute, so instances adding to the same minutes wait for each other, never
   * deadlock.
   */
  async addMinuteCounts(deltas: MinuteDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    const rows = JSON.stringify(deltas);
    await this.later`
      INSERT INTO minute_counts (type, minute, completed, failed)
      SELECT type, minute, completed, failed
        FROM jsonb_to_recordset(${rows}::text::jsonb)
          AS d(type text, minute bigint, completed bigint, failed bigint)
       ORDER BY type, minute
      ON CONFLICT (type, minute) DO UPDATE
        SET completed = minute_counts.completed + excluded.completed,
            failed = minute_counts.failed + excluded.failed`;
    await this.later`
      INSERT INTO minute_totals (minute, completed, failed)
      SELECT minute, sum(completed), sum(failed)
        FROM jsonb_to_recordset(${rows}::text::jsonb)
          AS d(minute bigint, completed bigint, failed bigint)
       GROUP BY minute ORDER BY minute
      ON CONFLICT (minute) DO UPDATE
        SET completed = minute_totals.completed + excluded.completed,
            failed = minute_totals.failed + excluded.failed`;
  }

  async setWaitingSample(minute: number, waiting: WaitingCount[]): Promise<void> {
    // One statement, rows in type order: the sample's types, and 0 for the types an earlier
    // sample of the minute had waiting and this one does not.
    await this.later`
      WITH sample AS (
        SELECT type, waiting FROM jsonb_to_recordset(${JSON.stringify(waiting)}::text::jsonb)
          AS w(type text, waiting bigint))
      INSERT INTO minute_counts (type, minute, waiting)
      SELECT type, ${minute}::bigint, waiting FROM (
          SELECT type, waiting FROM sample
        UNION ALL
          SELECT c.type, 0 FROM minute_counts c
           WHERE c.minute = ${minute} AND c.waiting > 0
             AND NOT EXISTS (SELECT 1 FROM sample s WHERE s.type = c.type)) w
       ORDER BY type
      ON CONFLICT (type, minute) DO UPDATE SET waiting = excluded.waiting`;
    const total = waiting.reduce((sum, w) => sum + w.waiting, 0);
    await this.later`
      INSERT INTO minute_totals (minute, waiting) VALUES (${minute}, ${total})
      ON CONFLICT (minute) DO UPDATE SET waiting = excluded.waiting`;
  }

  async pruneMinuteCounts(before: number, limit: number): Promise<number> {
    // SKIP LOCKED: a prune never waits on an instance adding to an old minute, nor it on the
    // prune, whatever order each locks in.
    await this.sql`
      DELETE FROM minute_totals WHERE minute IN (
        SELECT minute FROM minute_totals WHERE minute < ${before} FOR UPDATE SKIP LOCKED)`;
    const rows = await this.sql`
      DELETE FROM minute_counts WHERE (type, minute) IN (
        SELECT type, minute FROM minute_counts WHERE minute < ${before}
         ORDER BY minute LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING minute`;
    return rows.length;
  }

  async lockSchedule(name: string): Promise<ScheduleRecord | null> {
    const [row] = await this.sql`SELECT * FROM schedules WHERE name = ${name} FOR UPDATE`;
    return row ? toSchedule(row) : null;
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]> {
    // A row another instance is firing is passed over; once it commits, its next tick is
    // ahead, and a lock taken on it rechecks the condition against that commit.
    const rows = await this.sql`
      SELECT * FROM schedules WHERE next_run_at <= ${now}
       ORDER BY next_run_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
    return rows.map(toSchedule);
  }

  async saveSchedule(s: ScheduleRecord): Promise<void> {
    await this.later`
      INSERT INTO schedules (name, spec, paused, next_run_at, last_run_at, last_errand_id,
                             created, updated)
      VALUES (${s.name}, ${JSON.stringify(s.spec)}, ${s.paused}, ${s.nextRunAt}, ${s.lastRunAt},
              ${s.lastErrandId}, ${s.created}, ${s.updated})
      ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, paused = excluded.paused,
        next_run_at = excluded.next_run_at, last_run_at = excluded.last_run_at,
        last_errand_id = excluded.last_errand_id, created = excluded.created,
        updated = excluded.updated`;
  }

  async removeSchedule(name: string): Promise<boolean> {
    await this.sql`DELETE FROM schedule_ticks WHERE schedule = ${name}`;
    const removed = await this.sql`DELETE FROM schedules WHERE name = ${name} RETURNING name`;
    return removed.length > 0;
  }

  async recordTick(name: string, tick: number, now: number): Promise<boolean> {
    // A concurrent insert of the same key waits for the other's commit, then does nothing.
    const rows = await this.sql`
      INSERT INTO schedule_ticks (schedule, tick, created) VALUES (${name}, ${tick}, ${now})
      ON CONFLICT DO NOTHING RETURNING tick`;
    return rows.length > 0;
  }

  async pruneTicks(before: number, limit: number): Promise<number> {
    const rows = await this.sql`
      DELETE FROM schedule_ticks WHERE (schedule, tick) IN (
        SELECT schedule, tick FROM schedule_ticks WHERE created < ${before}
         ORDER BY created LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING tick`;
    return rows.length;
  }

  async probe(now: number): Promise<void> {
    await this.later`
      INSERT INTO write_probe (id, at) VALUES (1, ${now})
      ON CONFLICT (id) DO UPDATE SET at = excluded.at`;
  }
}
