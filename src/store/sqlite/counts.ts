// Errands per type and status, kept by the writes that change them.
//
// Every insert, status change and delete of an errand goes through ErrandWrites, which
// reports it here. The changes of the open write group are held in
// memory and written to type_counts in that group's transaction, just before its COMMIT: one
// upsert per type and status the group touched, instead of trigger statements on every row.
// A write rolled back to its savepoint takes its changes back; a group that fails to commit
// drops them all. Claims check a type's concurrency against the count as of the open group.

import type { Database, Statement } from "bun:sqlite";
import type { CountRow } from "../records.ts";

interface Change {
  type: string;
  status: string;
  delta: number;
}

export class TypeCounts {
  /** Committed counts, by key(type, status). */
  private readonly committed = new Map<string, number>();
  /** The open group's changes, by key(type, status). */
  private readonly pending = new Map<string, Change>();
  /** Each change of the writes running now, in order, to take back on a rollback. */
  private readonly journal: Array<[string, number]> = [];
  /** Where each running write's changes start in the journal (writes can nest). */
  private readonly marks: number[] = [];
  private readonly upsert: Statement<unknown, [string, string, number]>;

  constructor(db: Database) {
    const rows = db
      .query<{ type: string; status: string; count: number }, []>(
        "SELECT type, status, count FROM type_counts",
      )
      .all();
    for (const row of rows) this.committed.set(key(row.type, row.status), row.count);
    this.upsert = db.prepare(
      `INSERT INTO type_counts (type, status, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (type, status) DO UPDATE SET count = count + ?3`,
    );
  }

  /** Errands of `type` in `status`, counting the open group's writes. */
  count(type: string, status: string): number {
    const k = key(type, status);
    return (this.committed.get(k) ?? 0) + (this.pending.get(k)?.delta ?? 0);
  }

  /** Every count above zero, counting the open group's writes (a read inside a write). */
  rows(): CountRow[] {
    const rows: CountRow[] = [];
    for (const k of new Set([...this.committed.keys(), ...this.pending.keys()])) {
      const count = (this.committed.get(k) ?? 0) + (this.pending.get(k)?.delta ?? 0);
      if (count <= 0) continue;
      const cut = k.indexOf("\u0000");
      rows.push({ type: k.slice(cut + 1), status: k.slice(0, cut), count });
    }
    return rows.sort((a, b) => compare(a.type, b.type) || compare(a.status, b.status));
  }

  added(type: string, status: string): void {
    this.change(type, status, 1);
  }

  removed(type: string, status: string): void {
    this.change(type, status, -1);
  }

  moved(type: string, from: string, to: string): void {
    if (from === to) return;
    this.change(type, from, -1);
    this.change(type, to, 1);
  }

  // --- told by the store ---

  writeStarted(): void {
    this.marks.push(this.journal.length);
  }

  /** The running write ended: kept in the group, or rolled back to its savepoint. */
  writeEnded(kept: boolean): void {
    const mark = this.marks.pop() ?? 0;
    if (!kept) {
      for (let i = this.journal.length - 1; i >= mark; i--) {
        const [k, delta] = this.journal[i] as [string, number];
        const change = this.pending.get(k);
        if (change) change.delta -= delta;
      }
      this.journal.length = mark;
    }
    if (this.marks.length === 0) this.journal.length = 0;
  }

  /** Writes the group's changes into its transaction; runs just before COMMIT. */
  flush(): void {
    for (const change of this.pending.values()) {
      if (change.delta !== 0) this.upsert.run(change.type, change.status, change.delta);
    }
  }

  /** The group ended: its changes now count, or never will. */
  groupEnded(committed: boolean): void {
    if (committed) {
      for (const [k, change] of this.pending) {
        this.committed.set(k, (this.committed.get(k) ?? 0) + change.delta);
      }
    }
    this.pending.clear();
    this.journal.length = 0;
    this.marks.length = 0;
  }

  private change(type: string, status: string, delta: number): void {
    const k = key(type, status);
    const change = this.pending.get(k);
    if (change) change.delta += delta;
    else this.pending.set(k, { type, status, delta });
    this.journal.push([k, delta]);
  }
}

function key(type: string, status: string): string {
  return `${status}\u0000${type}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
