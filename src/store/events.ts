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
    this.prune = db.prepare<unknown, [number]>("DELETE FROM events WHERE created < ?");
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
