// Idempotency-Key on creates: the same key within 24 h answers the first result again.

import type { Clock } from "../clock.ts";
import { BadInput, Conflict } from "../errors.ts";
import { type Driver, deleteInBatches, type WriteTx } from "../store/driver.ts";

export const KEY_LIFETIME_MS = 24 * 3_600_000;
/** Most keys one write of prune deletes. */
const PRUNE_BATCH = 10_000;

/** What a key is used for: the same key for another operation is a 409. */
export type KeyedOperation = "create errand" | "create errands" | "create pipeline";

export class IdempotencyKeys {
  constructor(
    private readonly driver: Driver,
    private readonly clock: Clock,
  ) {}

  /**
   * Inside a write: the first result stored under `key`, or fn's result, stored under it in the
   * same transaction. The same key with another operation or body is a 409.
   */
  async run<T>(
    tx: WriteTx,
    key: string | undefined,
    operation: KeyedOperation,
    body: unknown,
    fn: () => Promise<T>,
  ): Promise<T> {
    if (key === undefined) return fn();
    if (key === "" || key.length > 255) {
      throw new BadInput("Invalid request", "headers.idempotency-key: 1 to 255 characters");
    }
    const request = fingerprint(operation, body);
    const now = this.clock.now();
    const first = await tx.idempotencyKey(key, now - KEY_LIFETIME_MS);
    if (first) {
      if (first.request !== request) {
        throw new Conflict(
          "Idempotency key reused",
          `the key ${JSON.stringify(key)} was first used with another request`,
        );
      }
      return JSON.parse(first.response) as T;
    }
    const result = await fn();
    await tx.rememberKey(key, request, JSON.stringify(result), now);
    return result;
  }

  /** Forgets keys older than their lifetime, a batch per write. */
  prune(): Promise<number> {
    const before = this.clock.now() - KEY_LIFETIME_MS;
    return deleteInBatches(this.driver, (tx, n) => tx.pruneKeys(before, n), PRUNE_BATCH);
  }
}

/** Each operation's namespace as keys were first stored, so a retry across an upgrade matches. */
const NAMESPACE: Record<KeyedOperation, string> = {
  "create errand": "POST /v1/errands",
  "create errands": "POST /v1/errands/batch",
  "create pipeline": "POST /v1/pipeline",
};

function fingerprint(operation: KeyedOperation, body: unknown): string {
  return new Bun.CryptoHasher("sha256")
    .update(`${NAMESPACE[operation]}\n${JSON.stringify(body)}`)
    .digest("hex");
}
