// Idempotency-Key on creates: the same key within 24 h answers the first result again.

import type { Clock } from "../clock.ts";
import { BadInput, Conflict } from "../errors.ts";
import type { Store } from "../store/db.ts";
import { IdempotencySql } from "../store/types.ts";

export const KEY_LIFETIME_MS = 24 * 3_600_000;
/** Most keys one write of prune deletes. */
const PRUNE_BATCH = 10_000;

export class IdempotencyKeys {
  private readonly sql: IdempotencySql;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.sql = new IdempotencySql(store.writer);
  }

  /**
   * Inside a write: the first result stored under `key`, or fn's result, stored under it in the
   * same transaction. The same key with another route or body is a 409.
   */
  run<T>(key: string | undefined, route: string, body: unknown, fn: () => T): T {
    if (key === undefined) return fn();
    if (key === "" || key.length > 255) {
      throw new BadInput("Invalid request", "headers.idempotency-key: 1 to 255 characters");
    }
    const request = fingerprint(route, body);
    const now = this.clock.now();
    const first = this.sql.get.get(key, now - KEY_LIFETIME_MS);
    if (first) {
      if (first.request !== request) {
        throw new Conflict(
          "Idempotency key reused",
          `the key ${JSON.stringify(key)} was first used with another request`,
        );
      }
      return JSON.parse(first.response) as T;
    }
    const result = fn();
    this.sql.insert.run(key, request, JSON.stringify(result), now);
    return result;
  }

  /** Forgets keys older than their lifetime, a batch per write. */
  prune(): Promise<number> {
    const before = this.clock.now() - KEY_LIFETIME_MS;
    return this.store.deleteInBatches((n) => this.sql.prune.run(before, n).changes, PRUNE_BATCH);
  }
}

function fingerprint(route: string, body: unknown): string {
  return new Bun.CryptoHasher("sha256").update(`${route}\n${JSON.stringify(body)}`).digest("hex");
}
