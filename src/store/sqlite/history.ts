// SQL for the per-minute history: completions, failures and waiting errands, by type and in all.

import type { Database } from "bun:sqlite";

export interface MinuteRow {
  minute: number;
  completed: number;
  failed: number;
  waiting: number | null;
}

export class HistoryReads {
  readonly totals;
  readonly ofType;

  constructor(db: Database) {
    // A range of minute_totals' key.
    this.totals = db.prepare<MinuteRow, [number]>(
      `SELECT minute, completed, failed, waiting FROM minute_totals
        WHERE minute >= ? ORDER BY minute`,
    );
    // The same range, each minute with one seek of the type's row; a sampled minute without
    // one had none of the type waiting. CAST: see the head of errands.ts.
    this.ofType = db.prepare<MinuteRow, [number, string]>(
      `SELECT t.minute, coalesce(c.completed, 0) AS completed, coalesce(c.failed, 0) AS failed,
              CASE WHEN t.waiting IS NULL THEN NULL ELSE coalesce(c.waiting, 0) END AS waiting
         FROM minute_totals t
         LEFT JOIN minute_counts c ON c.type = CAST(?2 AS TEXT) AND c.minute = t.minute
        WHERE t.minute >= ?1 ORDER BY t.minute`,
    );
  }
}

export class HistoryWrites {
  readonly addToType;
  readonly addToTotal;
  readonly clearWaiting;
  readonly setTypeWaiting;
  readonly setTotalWaiting;
  readonly pruneTypes;
  readonly pruneTotals;

  constructor(db: Database) {
    this.addToType = db.prepare<unknown, [string, number, number, number]>(
      `INSERT INTO minute_counts (type, minute, completed, failed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (type, minute) DO UPDATE
           SET completed = completed + ?3, failed = failed + ?4`,
    );
    this.addToTotal = db.prepare<unknown, [number, number, number]>(
      `INSERT INTO minute_totals (minute, completed, failed) VALUES (?1, ?2, ?3)
         ON CONFLICT (minute) DO UPDATE SET completed = completed + ?2, failed = failed + ?3`,
    );
    // A new sample replaces the minute's last: a type it does not name has none waiting.
    this.clearWaiting = db.prepare<unknown, [number]>(
      "UPDATE minute_counts SET waiting = 0 WHERE minute = ? AND waiting > 0",
    );
    this.setTypeWaiting = db.prepare<unknown, [string, number, number]>(
      `INSERT INTO minute_counts (type, minute, waiting) VALUES (?1, ?2, ?3)
         ON CONFLICT (type, minute) DO UPDATE SET waiting = ?3`,
    );
    this.setTotalWaiting = db.prepare<unknown, [number, number]>(
      `INSERT INTO minute_totals (minute, waiting) VALUES (?1, ?2)
         ON CONFLICT (minute) DO UPDATE SET waiting = ?2`,
    );
    // The oldest ?2 rows before ?1, on minute_counts_minute.
    this.pruneTypes = db.prepare<unknown, [number, number]>(
      `DELETE FROM minute_counts WHERE (type, minute) IN (
         SELECT type, minute FROM minute_counts WHERE minute < ?1 ORDER BY minute LIMIT ?2)`,
    );
    this.pruneTotals = db.prepare<unknown, [number]>("DELETE FROM minute_totals WHERE minute < ?");
  }
}
