// SQL for schedules and the ticks they have fired, and the mapping between a row and the
// ScheduleRecord the driver hands out. CAST(? AS TEXT): see the head of errands.ts.

import type { Database } from "bun:sqlite";
import type { ScheduleRecord } from "../records.ts";

export interface ScheduleRow {
  name: string;
  spec: string;
  paused: number;
  next_run_at: number | null;
  last_run_at: number | null;
  last_errand_id: string | null;
  created: number;
  updated: number;
}

const COLUMNS = "name, spec, paused, next_run_at, last_run_at, last_errand_id, created, updated";

export function toScheduleRecord(row: ScheduleRow): ScheduleRecord {
  return {
    name: row.name,
    spec: JSON.parse(row.spec),
    paused: row.paused === 1,
    nextRunAt: row.next_run_at,
    lastRunAt: row.last_run_at,
    lastErrandId: row.last_errand_id,
    created: row.created,
    updated: row.updated,
  };
}

export class ScheduleReads {
  readonly get;
  readonly page;

  constructor(db: Database) {
    this.get = db.prepare<ScheduleRow, [string]>(
      `SELECT ${COLUMNS} FROM schedules WHERE name = CAST(? AS TEXT)`,
    );
    this.page = db.prepare<ScheduleRow, [string, number]>(
      `SELECT ${COLUMNS} FROM schedules WHERE name > CAST(? AS TEXT) ORDER BY name LIMIT ?`,
    );
  }
}

export class ScheduleWrites {
  readonly due;
  readonly save;
  readonly remove;
  readonly removeTicks;
  readonly recordTick;
  readonly pruneTicks;

  constructor(db: Database) {
    // On schedules_due: a comparison on next_run_at implies the index's `IS NOT NULL`.
    this.due = db.prepare<ScheduleRow, [number, number]>(
      `SELECT ${COLUMNS} FROM schedules WHERE next_run_at <= ? ORDER BY next_run_at LIMIT ?`,
    );
    this.save = db.prepare<
      unknown,
      [string, string, number, number | null, number | null, string | null, number, number]
    >(
      `INSERT INTO schedules (${COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (name) DO UPDATE SET spec = ?2, paused = ?3, next_run_at = ?4,
           last_run_at = ?5, last_errand_id = ?6, created = ?7, updated = ?8`,
    );
    this.remove = db.prepare<unknown, [string]>(
      "DELETE FROM schedules WHERE name = CAST(? AS TEXT)",
    );
    this.removeTicks = db.prepare<unknown, [string]>(
      "DELETE FROM schedule_ticks WHERE schedule = CAST(? AS TEXT)",
    );
    this.recordTick = db.prepare<unknown, [string, number, number]>(
      "INSERT INTO schedule_ticks (schedule, tick, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    );
    // The oldest ?2 ticks recorded before ?1, on schedule_ticks_created.
    this.pruneTicks = db.prepare<unknown, [number, number]>(
      `DELETE FROM schedule_ticks WHERE (schedule, tick) IN (
         SELECT schedule, tick FROM schedule_ticks WHERE created < ? ORDER BY created LIMIT ?)`,
    );
  }
}
