// SQL for per-type controls and counts, idempotency keys, and the health check's queries.

import type { Database } from "bun:sqlite";
import type { RateHold, TypeControlsRecord } from "../records.ts";

export interface TypeRow {
  type: string;
  paused: number;
  concurrency: number | null;
  rate_max: number | null;
  rate_per_ms: number | null;
}

const CONTROLS = "type, paused, concurrency, rate_max, rate_per_ms";

/** A type's row as the driver hands it out. */
export function toControls(row: TypeRow): TypeControlsRecord {
  return {
    type: row.type,
    paused: row.paused === 1,
    concurrency: row.concurrency,
    rateLimit:
      row.rate_max === null || row.rate_per_ms === null
        ? null
        : { max: row.rate_max, perMs: row.rate_per_ms },
  };
}

export class TypeReads {
  readonly controls;
  readonly oldestWaiting;
  readonly depth;
  readonly ping;
  readonly startsSince;

  constructor(db: Database) {
    this.controls = db.prepare<TypeRow, []>(`SELECT ${CONTROLS} FROM types`);
    // The type's kept starts, one range of the key: at most about its limit's worth.
    this.startsSince = db.prepare<{ count: number }, [string, number]>(
      "SELECT count(*) AS count FROM claim_starts WHERE type = CAST(?1 AS TEXT) AND started > ?2",
    );
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
  readonly forgetStarts;
  readonly countStarts;
  readonly insertStart;
  readonly pruneStarts;
  readonly hold;
  readonly probe;

  constructor(db: Database) {
    this.one = db.prepare<TypeRow, [string]>(`SELECT ${CONTROLS} FROM types WHERE type = ?`);
    this.upsert = db.prepare<
      TypeRow,
      [string, number, number | null, number | null, number | null]
    >(
      `INSERT INTO types (type, paused, concurrency, rate_max, rate_per_ms)
       VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (type) DO UPDATE SET paused = ?2, concurrency = ?3, rate_max = ?4,
           rate_per_ms = ?5
       RETURNING ${CONTROLS}`,
    );
    this.forgetStarts = db.prepare<unknown, [string]>("DELETE FROM claim_starts WHERE type = ?");
    // Numbers ?2 more starts of a rate-limited type: answers the newest number and the limit.
    this.countStarts = db.prepare<
      { claims_started: number; rate_max: number; rate_per_ms: number },
      [string, number]
    >(
      `UPDATE types SET claims_started = claims_started + ?2
        WHERE type = ?1 AND rate_max IS NOT NULL
       RETURNING claims_started, rate_max, rate_per_ms`,
    );
    this.insertStart = db.prepare<unknown, [string, number, number]>(
      "INSERT INTO claim_starts (type, seq, started) VALUES (?, ?, ?)",
    );
    // The starts no later claim reads: older than the newest rate_max (?2 the number below
    // them), and out of the window (started at ?3 or before). A range of the key.
    this.pruneStarts = db.prepare<unknown, [string, number, number]>(
      "DELETE FROM claim_starts WHERE type = ?1 AND seq <= ?2 AND started <= ?3",
    );
    // The start the next claim waits on, rate_max claims back, while it is still in the
    // window at ?2: the next claim may start rate_per_ms after it. One key read.
    this.hold = db.prepare<RateHold, [string, number]>(
      `SELECT t.rate_max AS max, t.rate_per_ms AS perMs, s.started + t.rate_per_ms AS until
         FROM types t
         JOIN claim_starts s ON s.type = t.type AND s.seq = t.claims_started + 1 - t.rate_max
        WHERE t.type = ?1 AND t.paused = 0 AND s.started > ?2 - t.rate_per_ms`,
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
