// Read-only questions the operations routes ask the database: is it answering, and how many
// errands of each type and status it holds. Both run on the reader connection.

import type { Statement } from "bun:sqlite";
import { StorageUnavailable } from "../errors.ts";
import type { Store } from "./db.ts";

export interface DepthRow {
  type: string;
  status: string;
  count: number;
}

export class StoreStats {
  private readonly ping: Statement<{ any: number }, []>;
  private readonly depth: Statement<DepthRow, []>;

  constructor(private readonly store: Store) {
    this.ping = store.reader.prepare("SELECT EXISTS (SELECT 1 FROM errands) AS any");
    // type_counts is kept with every commit (counts.ts): one row per type and status, whatever
    // the store holds.
    this.depth = store.reader.prepare(
      "SELECT type, status, count FROM type_counts WHERE count > 0 ORDER BY type, status",
    );
  }

  /** Throws StorageUnavailable unless a real query on the database answers. */
  check(): void {
    this.run(() => this.ping.get());
  }

  countByTypeAndStatus(): DepthRow[] {
    return this.run(() => this.depth.all());
  }

  private run<T>(query: () => T): T {
    if (!this.store.isOpen) throw new StorageUnavailable("the database is closed");
    try {
      return query();
    } catch (error) {
      throw new StorageUnavailable(error instanceof Error ? error.message : String(error));
    }
  }
}
