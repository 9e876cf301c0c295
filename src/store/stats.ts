// What the operations routes ask the database: does it answer reads, does a write reach the
// disk, and how many errands of each type and status it holds.

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
  private readonly touchProbe: Statement<unknown, [number]>;
  /** The probe write in flight: concurrent health checks share it, so a flood of them costs
   *  one write per commit. */
  private probing: Promise<void> | null = null;

  constructor(private readonly store: Store) {
    this.ping = store.reader.prepare("SELECT EXISTS (SELECT 1 FROM errands) AS any");
    // type_counts is kept with every commit (counts.ts): one row per type and status, whatever
    // the store holds.
    this.depth = store.reader.prepare(
      "SELECT type, status, count FROM type_counts WHERE count > 0 ORDER BY type, status",
    );
    this.touchProbe = store.writer.prepare(
      "INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
    );
  }

  /** Throws StorageUnavailable unless a real query on the database answers. */
  check(): void {
    this.run(() => this.ping.get());
  }

  /**
   * Settles once a one-row write has committed (and, when durable, been synced) like any
   * request's; rejects with StorageUnavailable when writes fail.
   */
  checkWrites(now: number): Promise<void> {
    this.probing ??= this.store
      .write(() => {
        this.touchProbe.run(now);
      })
      .finally(() => {
        this.probing = null;
      });
    return this.probing;
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
