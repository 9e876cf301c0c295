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

/** A claim's candidate, and whether its type has a rate limit (1) or not (0 or null). */
export interface ClaimRow extends ErrandRow {
  rate_limited: number | null;
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

/** The statements that change errands, on the write connection. */
export class ErrandWrites {
  readonly insert;
  readonly candidate;
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

  constructor(db: Database) {
    // Every field, not only those a new errand sets: a record inserted reads back the same.
    this.insert = db.prepare<unknown, [Record<keyof ErrandRow, string | number | null>]>(
      `INSERT INTO errands (${COLUMNS})
       VALUES ($id, $name, $type, $status, $priority, $options, $data, $results, $created,
         $progress, $attempts, $started, $failed, $completed, $finished, $ttl_deadline,
         $pipeline, $run_at, $heartbeat_deadline)`,
    );
    // The next `?2` errands of a type: the highest priority, then the oldest, on the
    // errands_claim index; as many as the type's free slots allow, none while it is paused,
    // the errands active counted on errands_active in this same transaction (the one writer:
    // no other claim runs between). Under a rate limit, claim claims_started + j may start at
    // ?3 if claim claims_started + j - rate_max started rate_per_ms ago or more (or is not
    // kept): the first kept start of those still in the window bounds the take, one key read
    // per errand asked, and never more than rate_max at once (beyond, a claim would wait on
    // one of its own batch). The limit is worked out once, before the walk. `rate_limited` tells
    // whether the starts are to be counted, read once (the subquery depends on no row).
    this.candidate = db.prepare<ClaimRow, [string, number, number]>(
      `SELECT ${COLUMNS}, (SELECT rate_max IS NOT NULL FROM types WHERE type = ?1) AS rate_limited
         FROM errands
        WHERE type = CAST(?1 AS TEXT) AND status = 'inactive'
        ORDER BY priority DESC, created, id
        LIMIT coalesce((
          SELECT CASE WHEN paused = 1 THEN 0
                      ELSE max(0, min(?2,
                        CASE WHEN concurrency IS NULL THEN ?2
                             ELSE concurrency - (
                               SELECT count(*) FROM errands INDEXED BY errands_active
                                WHERE type = ?1 AND status = 'active') END,
                        CASE WHEN rate_max IS NULL THEN ?2
                             ELSE coalesce((
                               SELECT min(s.seq) FROM claim_starts s
                                WHERE s.type = ?1
                                  AND s.seq BETWEEN t.claims_started + 1 - t.rate_max
                                                AND t.claims_started + ?2 - t.rate_max
                                  AND s.started > ?3 - t.rate_per_ms)
                               - (t.claims_started + 1 - t.rate_max), t.rate_max) END)) END
            FROM types t WHERE t.type = ?1), ?2)`,
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
}
