// SQL for per-type controls and counts, idempotency keys, and the health check's queries.

import type { Database } from "bun:sqlite";

export interface TypeRow {
  type: string;
  paused: number;
  concurrency: number | null;
}

export class TypeReads {
  readonly controls;
  readonly oldestWaiting;
  readonly depth;
  readonly ping;

  constructor(db: Database) {
    this.controls = db.prepare<TypeRow, []>("SELECT type, paused, concurrency FROM types");
    // type_counts is kept with every commit (counts.ts): one row per type and status, whatever
    // the store holds.
    this.depth = db.prepare<{ type: string; status: string; count: number }, []>(
      "SELECT type, status, count FROM type_counts WHERE count > 0 ORDER BY type, status",
    );
    this.ping = db.prepare<{ any: number }, []>("SELECT EXISTS (SELECT 1 FROM errands) AS any");
    // On the errands_claim index (type, priority DESC, created, id): walk the type's distinct
    // waiting priorities, one seek each, and take the oldest `created` of each. CAST: see the
    // head of errands.ts.
    this.oldestWaiting = db.prepare<{ created: number | null }, [string]>(
      `WITH RECURSIVE level (priority) AS (
         SELECT max(priority) FROM errands
          WHERE type = CAST(?1 AS TEXT) AND status = 'inactive'
         UNION ALL
         SELECT (SELECT max(priority) FROM errands
                  WHERE type = CAST(?1 AS TEXT) AND status = 'inactive'
                    AND priority < level.priority)
           FROM level WHERE level.priority IS NOT NULL
       )
       SELECT min((SELECT min(created) FROM errands
                    WHERE type = CAST(?1 AS TEXT) AND status = 'inactive'
                      AND priority = level.priority)) AS created
         FROM level WHERE level.priority IS NOT NULL`,
    );
  }
}

export class TypeWrites {
  readonly one;
  readonly upsert;
  readonly probe;

  constructor(db: Database) {
    this.one = db.prepare<TypeRow, [string]>(
      "SELECT type, paused, concurrency FROM types WHERE type = ?",
    );
    this.upsert = db.prepare<TypeRow, [string, number, number | null]>(
      `INSERT INTO types (type, paused, concurrency) VALUES (?1, ?2, ?3)
         ON CONFLICT (type) DO UPDATE SET paused = ?2, concurrency = ?3
       RETURNING type, paused, concurrency`,
    );
    this.probe = db.prepare<unknown, [number]>(
      "INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
    );
  }
}

export interface KeyRow {
  request: string;
  response: string;
}

export class IdempotencySql {
  readonly get;
  readonly insert;
  readonly prune;

  constructor(db: Database) {
    this.get = db.prepare<KeyRow, [string, number]>(
      "SELECT request, response FROM idempotency_keys WHERE key = ? AND created >= ?",
    );
    this.insert = db.prepare<unknown, [string, string, string, number]>(
      `INSERT INTO idempotency_keys (key, request, response, created) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET request = ?2, response = ?3, created = ?4`,
    );
    // The oldest ?2 keys created before ?1, on idempotency_keys_created.
    this.prune = db.prepare<unknown, [number, number]>(
      `DELETE FROM idempotency_keys WHERE key IN (
         SELECT key FROM idempotency_keys WHERE created < ? ORDER BY created LIMIT ?)`,
    );
  }
}
