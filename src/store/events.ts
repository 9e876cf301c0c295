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
    this.insert = db.prepare<{ id: number }, [string, number, string]>(
      "INSERT INTO events (event, created, payload) VALUES (?, ?, ?) RETURNING id",
    );
    this.prune = db.prepare<unknown, [number]>("DELETE FROM events WHERE created < ?");
  }
}
