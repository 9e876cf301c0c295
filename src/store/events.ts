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
    // after the cutoff, found by walking from the oldest, which are the rows deleted anyway.
    // At most ?2 of them, the oldest ids, at a time (ids are handed out one after another).
    this.prune = db.prepare<unknown, [number, number]>(
      `DELETE FROM events WHERE id < min(
         coalesce((SELECT id FROM events WHERE created >= ?1 ORDER BY id LIMIT 1),
                  (SELECT max(id) + 1 FROM events)),
         (SELECT min(id) FROM events) + ?2)`,
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
