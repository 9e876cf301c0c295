// SQL for errands and their logs, prepared once per connection, and the mapping between a row
// and the ErrandRecord the driver hands out.
//
// A text parameter compared with an indexed column in a query with ORDER BY is written
// CAST(? AS TEXT): SQLite re-plans such a statement at every new binding of a bare `?`, which
// tripled the cost of the claim and of reading an errand's logs.

import type { Database, Statement } from "bun:sqlite";
import type { ErrandFilter, ListOrder } from "../driver.ts";
import type { ErrandRecord, LogEntry, Status } from "../records.ts";

export interface ErrandRow {
  id: string;
  name: string;
  type: string;
  status: string;
  priority: number;
  options: string;
  data: string | null;
  results: string | null;
  created: number;
  progress: number;
  attempts: number;
  started: number | null;
  failed: number | null;
  completed: number | null;
  finished: number | null;
  ttl_deadline: number | null;
  pipeline: string | null;
  run_at: number | null;
  heartbeat_deadline: number | null;
}

export const COLUMNS =
  "id, name, type, status, priority, options, data, results, created, progress, attempts, " +
  "started, failed, completed, finished, ttl_deadline, pipeline, run_at, heartbeat_deadline";

export function toRecord(row: ErrandRow): ErrandRecord {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    status: row.status as Status,
    priority: row.priority,
    options: JSON.parse(row.options),
    data: row.data,
    results: row.results,
    created: row.created,
    progress: row.progress,
    attempts: row.attempts,
    started: row.started,
    failed: row.failed,
    completed: row.completed,
    finished: row.finished,
    ttlDeadline: row.ttl_deadline,
    heartbeatDeadline: row.heartbeat_deadline,
    runAt: row.run_at,
    pipeline: row.pipeline,
  };
}

/** The row an errand is stored as. */
export function toRow(e: ErrandRecord): ErrandRow {
  return {
    id: e.id,
    name: e.name,
    type: e.type,
    status: e.status,
    priority: e.priority,
    options: JSON.stringify(e.options),
    data: e.data,
    results: e.results,
    created: e.created,
    progress: e.progress,
    attempts: e.attempts,
    started: e.started,
    failed: e.failed,
    completed: e.completed,
    finished: e.finished,
    ttl_deadline: e.ttlDeadline,
    pipeline: e.pipeline,
    run_at: e.runAt,
    heartbeat_deadline: e.heartbeatDeadline,
  };
}

/** Binds (type, status, after, limit): each statement of a filter's shape reads what it names. */
type FilterParams = [string | null, string | null, string, number];

/** The statements of each shape of a filter. */
interface Shapes<R> {
  all: Statement<R, FilterParams>;
  status: Statement<R, FilterParams>;
  type: Statement<R, FilterParams>;
  both: Statement<R, FilterParams>;
}

/** Which way a list runs by id, in SQL: the ids after its cursor ?3, and its ORDER BY. */
const BY_ID: Record<ListOrder, { after: string; sort: string }> = {
  oldest: { after: "id > CAST(?3 AS TEXT)", sort: "id" },
  newest: { after: "id < CAST(?3 AS TEXT)", sort: "id DESC" },
};

/**
 * The errands of a filter in one order from a cursor, at most a limit: one statement per shape
 * of the filter, each a range of its own index (the primary key's, errands_status, errands_type,
 * errands_type_status) read forwards or backwards, so nothing is filtered or sorted.
 */
export class FilteredStatements<R> {
  private readonly afterCursor: Shapes<R>;
  /** Newest first, the first page has no cursor: no text sorts after every id. */
  private readonly fromStart: Shapes<R>;

  constructor(db: Database, columns: string, order: ListOrder) {
    const { after, sort } = BY_ID[order];
    const shapes = (cursor: string[]): Shapes<R> => {
      const select = (...where: string[]) => {
        const all = [...where, ...cursor];
        return db.prepare<R, FilterParams>(
          `SELECT ${columns} FROM errands ${all.length > 0 ? `WHERE ${all.join(" AND ")}` : ""}
            ORDER BY ${sort} LIMIT ?4`,
        );
      };
      const status = "status = CAST(?2 AS TEXT)";
      const type = "type = CAST(?1 AS TEXT)";
      return {
        all: select(),
        status: select(status),
        type: select(type),
        both: select(type, status),
      };
    };
    this.afterCursor = shapes([after]);
    // Oldest first, "" sorts before every id: the first page is the one after "".
    this.fromStart = order === "oldest" ? this.afterCursor : shapes([]);
  }

  /** The statement that serves the filter from the cursor. */
  of(filter: ErrandFilter, after: string): Statement<R, FilterParams> {
    const shapes = after === "" ? this.fromStart : this.afterCursor;
    if (filter.type === undefined) return filter.status === undefined ? shapes.all : shapes.status;
    return filter.status === undefined ? shapes.type : shapes.both;
  }

  read(filter: ErrandFilter, after: string, limit: number): R[] {
    return this.of(filter, after).all(filter.type ?? null, filter.status ?? null, after, limit);
  }
}

/** Binds (prefix, the end of its range, after, limit); see prefixEnd. */
type NameParams = [string, string, string, number];

/**
 * The errands whose name starts with a prefix, in one order from a cursor: the ids of the page
 * come from errands_name alone, sorted; only the rows of the page are read from the table.
 */
class NameStatements {
  private readonly afterCursor: Statement<ErrandRow, NameParams>;
  /** Newest first, the first page has no cursor (as FilteredStatements). */
  private readonly fromStart: Statement<ErrandRow, NameParams>;

  constructor(db: Database, order: ListOrder) {
    const { after, sort } = BY_ID[order];
    // Names in [?1, ?2) start with ?1 (see prefixEnd).
    const select = (cursor: string) =>
      db.prepare<ErrandRow, NameParams>(
        `SELECT ${COLUMNS} FROM errands WHERE id IN (
           SELECT id FROM errands INDEXED BY errands_name
            WHERE name >= CAST(?1 AS TEXT) AND name < CAST(?2 AS TEXT) ${cursor}
            ORDER BY ${sort} LIMIT ?4)
          ORDER BY ${sort}`,
      );
    this.afterCursor = select(`AND ${after}`);
    this.fromStart = order === "oldest" ? this.afterCursor : select("");
  }

  /** The statement that serves the cursor. */
  of(after: string): Statement<ErrandRow, NameParams> {
    return after === "" ? this.fromStart : this.afterCursor;
  }

  read(prefix: string, end: string, after: string, limit: number): ErrandRow[] {
    return this.of(after).all(prefix, end, after, limit);
  }
}

/** The statements every connection needs: reading errands and their logs. */
export class ErrandReads {
  readonly get;
  readonly logs;
  readonly logsOf;
  readonly page: Record<ListOrder, FilteredStatements<ErrandRow>>;
  readonly pageScheduled;
  readonly pageByName: Record<ListOrder, NameStatements>;

  constructor(db: Database) {
    this.get = db.prepare<ErrandRow, [string]>(`SELECT ${COLUMNS} FROM errands WHERE id = ?`);
    this.logs = db.prepare<LogEntry, [string]>(
      "SELECT severity, message, timestamp FROM errand_logs WHERE errand_id = CAST(? AS TEXT) ORDER BY id",
    );
    // The logs of a page of errands in one query: ?1 is a JSON array of their ids, each one
    // seek on errand_logs_errand.
    this.logsOf = db.prepare<LogEntry & { errand_id: string }, [string]>(
      `SELECT errand_id, severity, message, timestamp FROM errand_logs
        WHERE errand_id IN (SELECT value FROM json_each(?)) ORDER BY errand_id, id`,
    );
    this.page = {
      oldest: new FilteredStatements(db, COLUMNS, "oldest"),
      newest: new FilteredStatements(db, COLUMNS, "newest"),
    };
    // Soonest first from a (run_at, id) cursor, a range of errands_due (named: without
    // statistics the planner may take errands_status and sort).
    this.pageScheduled = db.prepare<ErrandRow, [number, string, number]>(
      `SELECT ${COLUMNS} FROM errands INDEXED BY errands_due
        WHERE status = 'scheduled' AND (run_at, id) > (?1, CAST(?2 AS TEXT))
        ORDER BY run_at, id LIMIT ?3`,
    );
    this.pageByName = {
      oldest: new NameStatements(db, "oldest"),
      newest: new NameStatements(db, "newest"),
    };
  }
}

/** A type's controls, as a claim reads them. */
interface TypeControlsRow {
  paused: number;
  concurrency: number | null;
  rate_max: number | null;
  rate_per_ms: number | null;
  claims_started: number;
}

/** The statements that change errands, on the write connection. */
export class ErrandWrites {
  readonly insert;
  readonly controls;
  readonly activeCount;
  readonly firstInWindow;
  /** The take of each count asked so far (see take). */
  private readonly takes = new Map<number, Statement<ErrandRow, [string]>>();
  readonly byIds;
  readonly save;
  readonly status;
  readonly touch;
  readonly remove;
  readonly removeLogs;
  readonly appendLog;
  readonly trimLogs;
  readonly ids: FilteredStatements<{ id: string }>;
  readonly finishedBefore;
  readonly overdue;
  readonly silent;
  readonly due;

  constructor(private readonly db: Database) {
    // Every field, not only those a new errand sets: a record inserted reads back the same.
    this.insert = db.prepare<unknown, [Record<keyof ErrandRow, string | number | null>]>(
      `INSERT INTO errands (${COLUMNS})
       VALUES ($id, $name, $type, $status, $priority, $options, $data, $results, $created,
         $progress, $attempts, $started, $failed, $completed, $finished, $ttl_deadline,
         $pipeline, $run_at, $heartbeat_deadline)`,
    );
    // What a claim of a type needs to know of its controls (no row: none).
    this.controls = db.prepare<TypeControlsRow, [string]>(
      `SELECT paused, concurrency, rate_max, rate_per_ms, claims_started
         FROM types WHERE type = CAST(?1 AS TEXT)`,
    );
    // Counted in the claim's own transaction (the one writer: no other claim runs between).
    this.activeCount = db.prepare<{ n: number }, [string]>(
      `SELECT count(*) AS n FROM errands INDEXED BY errands_active
        WHERE type = CAST(?1 AS TEXT) AND status = 'active'`,
    );
    // The first of the starts numbered ?2 to ?3 still inside the window (after ?4): one key
    // read per start.
    this.firstInWindow = db.prepare<{ seq: number | null }, [string, number, number, number]>(
      `SELECT min(seq) AS seq FROM claim_starts
        WHERE type = CAST(?1 AS TEXT) AND seq BETWEEN ?2 AND ?3 AND started > ?4`,
    );
    // Errands by id, ?1 a JSON array of ids, each one seek on the primary key.
    this.byIds = db.prepare<ErrandRow, [string]>(
      `SELECT ${COLUMNS} FROM errands WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`,
    );
    this.save = db.prepare<
      unknown,
      [
        string,
        number,
        string | null,
        number,
        number | null,
        number | null,
        number | null,
        number | null,
        number | null,
        number | null,
        number | null,
        string,
      ]
    >(
      `UPDATE errands SET status = ?, progress = ?, results = ?, attempts = ?, started = ?,
         failed = ?, completed = ?, finished = ?, ttl_deadline = ?, heartbeat_deadline = ?,
         run_at = ?
       WHERE id = ?`,
    );
    this.status = db.prepare<{ status: string }, [string]>(
      "SELECT status FROM errands WHERE id = ?",
    );
    this.touch = db.prepare<unknown, [number, string]>(
      "UPDATE errands SET heartbeat_deadline = ? WHERE id = ?",
    );
    this.remove = db.prepare<unknown, [string]>("DELETE FROM errands WHERE id = ?");
    this.removeLogs = db.prepare<unknown, [string]>("DELETE FROM errand_logs WHERE errand_id = ?");
    this.appendLog = db.prepare<unknown, [string, string, string, number]>(
      "INSERT INTO errand_logs (errand_id, severity, message, timestamp) VALUES (?, ?, ?, ?)",
    );
    // Drops all but the newest `keep` entries, walking the errand's own index entries only.
    this.trimLogs = db.prepare<unknown, [string, string, number]>(
      `DELETE FROM errand_logs WHERE errand_id = ? AND id <= (
         SELECT id FROM errand_logs WHERE errand_id = CAST(? AS TEXT) ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.ids = new FilteredStatements(db, "id", "oldest");
    // On errands_finished by name: with no statistics yet the planner may take errands_status
    // and sort every finished errand for each batch of clear.
    this.finishedBefore = db.prepare<{ id: string }, [number, number]>(
      `SELECT id FROM errands INDEXED BY errands_finished
        WHERE finished < ? AND finished IS NOT NULL AND pipeline IS NULL
          AND status IN ('completed', 'failed')
        ORDER BY finished LIMIT ?`,
    );
    this.overdue = db.prepare<{ id: string }, [number, number]>(
      "SELECT id FROM errands WHERE ttl_deadline <= ? ORDER BY ttl_deadline LIMIT ?",
    );
    this.silent = db.prepare<{ id: string }, [number, number]>(
      "SELECT id FROM errands WHERE heartbeat_deadline <= ? ORDER BY heartbeat_deadline LIMIT ?",
    );
    // By name: with no statistics yet the planner takes errands_status and sorts every
    // scheduled errand, each second.
    this.due = db.prepare<{ id: string }, [number, number]>(
      `SELECT id FROM errands INDEXED BY errands_due
        WHERE status = 'scheduled' AND run_at <= ? ORDER BY run_at LIMIT ?`,
    );
  }

  /**
   * The next `count` errands of a type: the highest priority, then the oldest, on the
   * errands_claim index. The count is written into the statement, one per count, prepared the
   * first time it is asked: SQLite plans with the value of a bound LIMIT, so a statement with
   * one is prepared again at every run, which cost more than the claim itself.
   */
  take(count: number): Statement<ErrandRow, [string]> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`cannot take ${count} errands`);
    let statement = this.takes.get(count);
    if (!statement) {
      statement = this.db.prepare<ErrandRow, [string]>(
        `SELECT ${COLUMNS} FROM errands
          WHERE type = CAST(?1 AS TEXT) AND status = 'inactive'
          ORDER BY priority DESC, created, id LIMIT ${count}`,
      );
      this.takes.set(count, statement);
    }
    return statement;
  }

  /**
   * How many of `asked` errands a claim of `type` may take at `now`, and whether its starts
   * are to be counted (a rate limit): none while it is paused; at most its free slots; under a
   * rate limit, claim claims_started + j may start if claim claims_started + j - rate_max
   * started rate_per_ms ago or more (or is not kept), so the first kept start of those still in
   * the window bounds the take, and a take is never more than rate_max (beyond, a claim would
   * wait on one of its own batch). Each part is its own small statement, run only for a type
   * that has it: one statement with them all was prepared again at every run.
   */
  allowed(type: string, asked: number, now: number): { allowed: number; rateLimited: boolean } {
    const c = this.controls.get(type);
    if (!c) return { allowed: asked, rateLimited: false };
    const rateLimited = c.rate_max !== null;
    if (c.paused) return { allowed: 0, rateLimited };
    let allowed = asked;
    if (c.concurrency !== null) {
      allowed = Math.min(allowed, c.concurrency - (this.activeCount.get(type)?.n ?? 0));
    }
    if (c.rate_max !== null && c.rate_per_ms !== null) {
      const from = c.claims_started + 1 - c.rate_max;
      const to = c.claims_started + asked - c.rate_max;
      const first = this.firstInWindow.get(type, from, to, now - c.rate_per_ms)?.seq ?? null;
      allowed = Math.min(allowed, first === null ? c.rate_max : first - from);
    }
    return { allowed: Math.max(0, allowed), rateLimited };
  }
}
