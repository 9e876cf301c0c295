// SQL for errands and their logs, prepared once per connection.
//
// A text parameter compared with an indexed column in a query with ORDER BY is written
// CAST(? AS TEXT): SQLite re-plans such a statement at every new binding of a bare `?`, which
// tripled the cost of the claim and of reading an errand's logs.

import type { Database } from "bun:sqlite";
import type { TypeCounts } from "./counts.ts";

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
  /** When a scheduled errand comes due. */
  run_at: number | null;
  /** While active with options.heartbeat: when its worker must next be heard from. */
  heartbeat_deadline: number | null;
}

export interface LogRow {
  severity: string;
  message: string;
  timestamp: number;
}

/** A row for a new errand: no results, progress, attempts or times yet. */
export function newErrandRow(
  init: Pick<ErrandRow, "id" | "name" | "type" | "status" | "priority" | "options" | "data"> &
    Pick<ErrandRow, "created" | "pipeline" | "run_at">,
): ErrandRow {
  return {
    ...init,
    results: null,
    progress: 0,
    attempts: 0,
    started: null,
    failed: null,
    completed: null,
    finished: null,
    ttl_deadline: null,
    heartbeat_deadline: null,
  };
}

export const COLUMNS =
  "id, name, type, status, priority, options, data, results, created, progress, attempts, " +
  "started, failed, completed, finished, ttl_deadline, pipeline, run_at, heartbeat_deadline";

/** The statements every connection needs: reading errands. */
export class ErrandReads {
  readonly get;
  readonly logs;
  readonly pageAll;
  readonly pageByStatus;
  readonly pageByType;

  constructor(db: Database) {
    this.get = db.prepare<ErrandRow, [string]>(`SELECT ${COLUMNS} FROM errands WHERE id = ?`);
    this.logs = db.prepare<LogRow, [string]>(
      "SELECT severity, message, timestamp FROM errand_logs WHERE errand_id = CAST(? AS TEXT) ORDER BY id",
    );
    this.pageAll = db.prepare<ErrandRow, [string, number]>(
      `SELECT ${COLUMNS} FROM errands WHERE id > CAST(? AS TEXT) ORDER BY id LIMIT ?`,
    );
    this.pageByStatus = db.prepare<ErrandRow, [string, string, number]>(
      `SELECT ${COLUMNS} FROM errands
        WHERE status = CAST(? AS TEXT) AND id > CAST(? AS TEXT) ORDER BY id LIMIT ?`,
    );
    this.pageByType = db.prepare<ErrandRow, [string, string, number]>(
      `SELECT ${COLUMNS} FROM errands
        WHERE type = CAST(? AS TEXT) AND id > CAST(? AS TEXT) ORDER BY id LIMIT ?`,
    );
  }

  /** One page of errands in id (creation) order, optionally where `key` equals `value`. */
  page(filter: { key: "status" | "type"; value: string } | null, after: string, limit: number) {
    if (filter === null) return this.pageAll.all(after, limit);
    const stmt = filter.key === "status" ? this.pageByStatus : this.pageByType;
    return stmt.all(filter.value, after, limit);
  }
}

/** The errand statements of both connections, prepared once per store and shared. */
export interface ErrandSql {
  writes: ErrandWrites;
  reads: ErrandReads;
}

/**
 * The statements that change errands, on the write connection. Inserts, status changes and
 * deletes go through the methods here, which keep the per-type counts (counts.ts); a row is
 * saved or removed only as read by row(), so its stored status is known.
 */
export class ErrandWrites extends ErrandReads {
  private readonly insertStmt;
  private readonly candidate;
  private readonly claimById;
  private readonly saveStmt;
  private readonly removeStmt;
  private readonly unblockStmt;
  readonly uncountAttempt;
  readonly touch;
  private readonly removeLogs;
  readonly appendLog;
  readonly trimLogs;
  readonly idsByStatus;
  readonly idsByType;
  readonly finishedBefore;
  readonly overdue;
  readonly silent;
  readonly due;
  /** The status each row read by row() has in the store. */
  private readonly stored = new WeakMap<ErrandRow, string>();

  constructor(
    db: Database,
    private readonly counts: TypeCounts,
  ) {
    super(db);
    this.insertStmt = db.prepare<
      unknown,
      [
        string,
        string,
        string,
        string,
        number,
        string,
        string | null,
        number,
        number | null,
        string | null,
      ]
    >(
      `INSERT INTO errands (id, name, type, status, priority, options, data, created, run_at,
         pipeline)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // The next errand of a type: the highest priority, then the oldest, on the errands_claim
    // index; none while the type is paused or has `concurrency` errands active (?2, the count
    // as of the open group). Taken with claimById in the same synchronous write on the only
    // write connection, so no other claim runs in between; two statements cost a fifth of one
    // UPDATE … WHERE id = (SELECT …) RETURNING.
    this.candidate = db.prepare<{ id: string }, [string, number]>(
      `SELECT id FROM errands
        WHERE type = CAST(?1 AS TEXT) AND status = 'inactive'
          AND NOT EXISTS (
            SELECT 1 FROM types WHERE types.type = ?1 AND (paused = 1 OR concurrency <= ?2))
        ORDER BY priority DESC, created, id LIMIT 1`,
    );
    this.claimById = db.prepare<unknown, [number, string]>(
      `UPDATE errands
         SET status = 'active', started = ?1, attempts = attempts + 1, progress = 0,
             finished = NULL,
             ttl_deadline = CASE WHEN json_extract(options, '$.ttl') > 0
                                 THEN min(?1 + json_extract(options, '$.ttl') * 60000,
                                          9007199254740991) END,
             heartbeat_deadline = CASE WHEN json_extract(options, '$.heartbeat') > 0
                                 THEN ?1 + json_extract(options, '$.heartbeat') * 1000 END
       WHERE id = ?2`,
    );
    this.saveStmt = db.prepare<
      unknown,
      [
        string,
        number,
        string | null,
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
      `UPDATE errands SET status = ?, progress = ?, results = ?, started = ?, failed = ?,
         completed = ?, finished = ?, ttl_deadline = ?, run_at = ?, heartbeat_deadline = ?
       WHERE id = ?`,
    );
    this.removeStmt = db.prepare<unknown, [string]>("DELETE FROM errands WHERE id = ?");
    this.unblockStmt = db.prepare<unknown, [string, string]>(
      `UPDATE errands SET status = ?1, run_at = CASE WHEN ?1 = 'scheduled' THEN run_at END
        WHERE id = ?2 AND status = 'blocked'`,
    );
    this.touch = db.prepare<unknown, [number, string]>(
      "UPDATE errands SET heartbeat_deadline = ? WHERE id = ?",
    );
    this.uncountAttempt = db.prepare<unknown, [string]>(
      "UPDATE errands SET attempts = attempts - 1 WHERE id = ?",
    );
    this.removeLogs = db.prepare<unknown, [string]>("DELETE FROM errand_logs WHERE errand_id = ?");
    this.appendLog = db.prepare<unknown, [string, string, string, number]>(
      "INSERT INTO errand_logs (errand_id, severity, message, timestamp) VALUES (?, ?, ?, ?)",
    );
    // Drops all but the newest `keep` entries, walking the errand's own index entries only.
    this.trimLogs = db.prepare<unknown, [string, string, number]>(
      `DELETE FROM errand_logs WHERE errand_id = ? AND id <= (
         SELECT id FROM errand_logs WHERE errand_id = CAST(? AS TEXT) ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.idsByStatus = db.prepare<{ id: string }, [string]>(
      "SELECT id FROM errands WHERE status = CAST(? AS TEXT) ORDER BY id",
    );
    this.idsByType = db.prepare<{ id: string }, [string]>(
      "SELECT id FROM errands WHERE type = CAST(? AS TEXT) ORDER BY id",
    );
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

  /** The errand, read to be changed: save() and remove() take only rows read here. */
  row(id: string): ErrandRow | null {
    const row = this.get.get(id);
    if (row) this.stored.set(row, row.status);
    return row;
  }

  insert(row: ErrandRow): void {
    this.insertStmt.run(
      row.id,
      row.name,
      row.type,
      row.status,
      row.priority,
      row.options,
      row.data,
      row.created,
      row.run_at,
      row.pipeline,
    );
    this.counts.added(row.type, row.status);
    this.stored.set(row, row.status);
  }

  /** Claims the next errand of `type` (see candidate above); its id, or null when none. */
  claim(type: string, now: number): string | null {
    const next = this.candidate.get(type, this.counts.count(type, "active"));
    if (!next) return null;
    this.claimById.run(now, next.id);
    this.counts.moved(type, "inactive", "active");
    return next.id;
  }

  /** Writes the row's status, progress, results, times and deadlines back. */
  save(row: ErrandRow): void {
    const before = this.storedStatus(row);
    this.saveStmt.run(
      row.status,
      row.progress,
      row.results,
      row.started,
      row.failed,
      row.completed,
      row.finished,
      row.ttl_deadline,
      row.run_at,
      row.heartbeat_deadline,
      row.id,
    );
    this.counts.moved(row.type, before, row.status);
    this.stored.set(row, row.status);
  }

  /** Deletes the errand and its logs. */
  remove(row: ErrandRow): void {
    const before = this.storedStatus(row);
    this.removeLogs.run(row.id);
    if (this.removeStmt.run(row.id).changes > 0) this.counts.removed(row.type, before);
    this.stored.delete(row);
  }

  /** A blocked errand whose dependencies are done: queued, or scheduled if its time is ahead. */
  unblock(row: ErrandRow, now: number): void {
    const status = row.run_at !== null && row.run_at > now ? "scheduled" : "inactive";
    if (this.unblockStmt.run(status, row.id).changes === 0) return;
    this.counts.moved(row.type, "blocked", status);
    row.status = status;
    if (status === "inactive") row.run_at = null;
  }

  private storedStatus(row: ErrandRow): string {
    const status = this.stored.get(row);
    if (status === undefined) throw new Error(`errand ${row.id} was not read with row()`);
    return status;
  }

  /**
   * The errand's logs, the newest `max` of them: older ones are deleted here. Every log append
   * is followed by a read of the errand's logs through this, so the trim costs nothing until an
   * errand has more than `max`.
   */
  keptLogs(id: string, max: number): LogRow[] {
    const logs = this.logs.all(id);
    if (logs.length <= max) return logs;
    this.trimLogs.run(id, id, max);
    return logs.slice(logs.length - max);
  }

  idsWhere(key: "status" | "type", value: string): string[] {
    const stmt = key === "status" ? this.idsByStatus : this.idsByType;
    return stmt.all(value).map((r) => r.id);
  }
}
