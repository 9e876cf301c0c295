// SQL for pipelines, their dependency edges, and the errands they hold, prepared once per connection.

import type { Database } from "bun:sqlite";
import { type PipelineRecord, type PipelineStatus, STATUSES } from "../records.ts";
import { COLUMNS as ERRAND_COLUMNS, type ErrandRow } from "./errands.ts";

export interface PipelineRow {
  id: string;
  name: string;
  delete_on_completed: number;
  status: string;
  started: number;
  ended: number | null;
  /** When it settled, completed or failed with nothing left to run; null otherwise. */
  finished: number | null;
}

export function toPipelineRecord(row: PipelineRow): PipelineRecord {
  return {
    id: row.id,
    name: row.name,
    deleteOnCompleted: row.delete_on_completed === 1,
    status: row.status as PipelineStatus,
    started: row.started,
    ended: row.ended,
    finished: row.finished,
  };
}

/** One edge by errand names: `target` depends on `dependsOn`. */
export interface DependencyRow {
  target: string;
  dependsOn: string;
}

/** What a pipeline's status is computed from: each answer is a seek on errands_pipeline. */
export interface ProgressRow {
  failed: number;
  unfinished: number;
  started: number;
  pending: number;
}

const PIPELINE_COLUMNS = "id, name, delete_on_completed, status, started, ended, finished";

/** `'a', 'b'` for an IN list of statuses: an IN on an index column is one seek per value. */
const quoted = (statuses: readonly string[]) => statuses.map((s) => `'${s}'`).join(", ");

/** The statements every connection needs: reading pipelines. */
export class PipelineReads {
  readonly get;
  private readonly pageAll;
  private readonly pageByStatus;
  readonly errands;
  readonly dependencies;
  readonly dependencyResults;

  constructor(db: Database) {
    this.get = db.prepare<PipelineRow, [string]>(
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE id = ?`,
    );
    this.pageAll = db.prepare<PipelineRow, [string, number]>(
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines WHERE id > CAST(? AS TEXT) ORDER BY id LIMIT ?`,
    );
    this.pageByStatus = db.prepare<PipelineRow, [string, string, number]>(
      `SELECT ${PIPELINE_COLUMNS} FROM pipelines
        WHERE status = CAST(? AS TEXT) AND id > CAST(? AS TEXT) ORDER BY id LIMIT ?`,
    );
    // Ids are time-ordered (v7) and handed out in the order the errands were sent.
    this.errands = db.prepare<ErrandRow, [string]>(
      `SELECT ${ERRAND_COLUMNS} FROM errands WHERE pipeline = CAST(? AS TEXT) ORDER BY id`,
    );
    // Lookups are written as subqueries, not joins: this SQLite runs these joins several times
    // slower than the same seeks as subqueries (measured: 10 µs against 3 µs).
    this.dependencies = db.prepare<DependencyRow, [string]>(
      `SELECT (SELECT name FROM errands WHERE id = e.target) AS target,
              (SELECT name FROM errands WHERE id = e.depends_on) AS dependsOn
         FROM pipeline_dependencies e
        WHERE e.pipeline = CAST(? AS TEXT) ORDER BY e.position`,
    );
    this.dependencyResults = db.prepare<{ name: string; results: string | null }, [string]>(
      `SELECT name, results FROM errands
        WHERE id IN (SELECT depends_on FROM pipeline_dependencies WHERE target = CAST(? AS TEXT)) ORDER BY id`,
    );
  }

  /** One page of pipelines in id (creation) order, optionally of one status. */
  page(status: string | undefined, after: string, limit: number): PipelineRow[] {
    return status === undefined
      ? this.pageAll.all(after, limit)
      : this.pageByStatus.all(status, after, limit);
  }
}

/** The statements that change pipelines, on the write connection. */
export class PipelineWrites extends PipelineReads {
  readonly insert;
  readonly insertDependency;
  readonly setStatus;
  readonly finishedBefore;
  readonly progress;
  readonly unblockable;
  readonly errandIds;
  readonly removeDependencies;
  readonly remove;

  constructor(db: Database) {
    super(db);
    this.insert = db.prepare<
      unknown,
      [string, string, number, string, number, number | null, number | null]
    >(`INSERT INTO pipelines (${PIPELINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    // Repeated edges are dropped before this (graph.ts): the unique index would refuse them.
    this.insertDependency = db.prepare<unknown, [string, number, string, string]>(
      `INSERT INTO pipeline_dependencies (pipeline, position, target, depends_on)
       VALUES (?, ?, ?, ?)`,
    );
    this.setStatus = db.prepare<unknown, [string, number | null, number | null, string]>(
      "UPDATE pipelines SET status = ?, ended = coalesce(ended, ?), finished = ? WHERE id = ?",
    );
    this.finishedBefore = db.prepare<{ id: string }, [number, number]>(
      "SELECT id FROM pipelines WHERE finished < ? ORDER BY finished LIMIT ?",
    );
    const unfinished = quoted(STATUSES.filter((s) => s !== "completed"));
    this.progress = db.prepare<ProgressRow, [string]>(
      `SELECT
         EXISTS (SELECT 1 FROM errands WHERE pipeline = ?1 AND status = 'failed') AS failed,
         EXISTS (SELECT 1 FROM errands WHERE pipeline = ?1 AND status IN (${unfinished}))
           AS unfinished,
         EXISTS (SELECT 1 FROM errands WHERE pipeline = ?1 AND status IN ('active', 'completed'))
           OR EXISTS (SELECT 1 FROM errands WHERE pipeline = ?1
                        AND status IN (${quoted(STATUSES)}) AND started IS NOT NULL)
           AS started,
         EXISTS (SELECT 1 FROM errands WHERE pipeline = ?1
                   AND status IN ('inactive', 'active', 'scheduled')) AS pending`,
    );
    // The blocked dependents of one errand whose dependencies have all completed: a walk of
    // that errand's dependents and of their own dependencies, by index. Dependencies are checked
    // newest first: claims take the oldest first, so an unfinished one is usually met at once
    // (a fan-in of n usually costs O(n) in all, not O(n²)). The unary + keeps SQLite
    // from starting at the errands_status index, which would walk every blocked errand stored.
    this.unblockable = db.prepare<ErrandRow, [string]>(
      `SELECT ${ERRAND_COLUMNS} FROM errands t
        WHERE t.id IN (SELECT target FROM pipeline_dependencies WHERE depends_on = ?)
          AND +t.status = 'blocked'
          AND (SELECT 1 FROM pipeline_dependencies f
                WHERE f.target = t.id
                  AND (SELECT status FROM errands WHERE id = f.depends_on) <> 'completed'
                ORDER BY f.depends_on DESC LIMIT 1) IS NULL
        ORDER BY t.id`,
    );
    this.errandIds = db.prepare<{ id: string }, [string]>(
      "SELECT id FROM errands WHERE pipeline = CAST(? AS TEXT) ORDER BY id",
    );
    this.removeDependencies = db.prepare<unknown, [string]>(
      "DELETE FROM pipeline_dependencies WHERE pipeline = ?",
    );
    this.remove = db.prepare<unknown, [string]>("DELETE FROM pipelines WHERE id = ?");
  }
}
