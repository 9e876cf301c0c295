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
    // A scan of the covering index errands_depth (status, type), not of the table.
    this.depth = store.reader.prepare(
      "SELECT type, status, count(*) AS count FROM errands GROUP BY status, type",
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
