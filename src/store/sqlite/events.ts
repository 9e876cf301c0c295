// SQL for the durable event log.

import type { Database } from "bun:sqlite";

export interface EventRow {
  id: number;
  event: string;
  payload: string;
}

export class EventWrites {
  readonly insert;
  readonly prune;

  constructor(db: Database) {
    this.insert = db.prepare<unknown, [string, number, string]>(
      "INSERT INTO events (event, created, payload) VALUES (?, ?, ?)",
    );
    // Ids grow with time: the events to drop are those before the first one recorded at or
    // after the cutoff. At most ?2 at a time, the oldest ids (handed out one after another):
    // the first kept one is looked for within that window only, so a batch reads no more
    // rows than it deletes, however long the backlog.
    this.prune = db.prepare<unknown, [number, number]>(
      `WITH win(lo, hi) AS (SELECT min(id), min(id) + ?2 FROM events)
       DELETE FROM events WHERE id < (
         SELECT coalesce(
           (SELECT id FROM events WHERE id >= win.lo AND id < win.hi AND created >= ?1
             ORDER BY id LIMIT 1),
           win.hi)
         FROM win)`,
    );
  }
}

export class EventReads {
  readonly after;
  readonly oldest;
  readonly newest;

  constructor(db: Database) {
    this.after = db.prepare<EventRow, [number, number]>(
      "SELECT id, event, payload FROM events WHERE id > CAST(? AS INTEGER) ORDER BY id LIMIT ?",
    );
    this.oldest = db.prepare<{ id: number }, []>("SELECT min(id) AS id FROM events");
    // AUTOINCREMENT keeps the last id handed out even once its row is pruned.
    this.newest = db.prepare<{ seq: number }, []>(
      "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
    );
  }
}
