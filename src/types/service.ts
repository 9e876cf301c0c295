// Per-type controls (paused, concurrency) and the per-type view of the queue.

import type { Clock } from "../clock.ts";
import type { Store } from "../store/db.ts";
import type { StoreStats } from "../store/stats.ts";
import { TypeReads, TypeWrites } from "../store/types.ts";
import type { TypeControls, TypeSummary } from "./model.ts";

export class TypeService {
  private readonly r: TypeReads;
  private readonly w: TypeWrites;

  constructor(
    private readonly store: Store,
    /** Counts by type and status (the same rows as queue depth in the metrics). */
    private readonly stats: StoreStats,
    private readonly clock: Clock,
    /** Told when a type may have become claimable (unpaused, more concurrency). */
    private readonly onChange: (type: string) => void = () => {},
  ) {
    this.r = new TypeReads(store.reader);
    this.w = new TypeWrites(store.writer);
  }

  /** Every type that has errands or controls: counts by status, oldest wait, controls. */
  list(): TypeSummary[] {
    const byType = new Map<string, TypeSummary>();
    const entry = (type: string): TypeSummary => {
      let summary = byType.get(type);
      if (!summary) {
        summary = { type, counts: {}, oldestWaitingMs: null, paused: false, concurrency: null };
        byType.set(type, summary);
      }
      return summary;
    };
    for (const row of this.stats.countByTypeAndStatus()) {
      entry(row.type).counts[row.status] = row.count;
    }
    for (const row of this.r.controls.all()) {
      const summary = entry(row.type);
      summary.paused = row.paused === 1;
      summary.concurrency = row.concurrency;
    }
    const now = this.clock.now();
    for (const summary of byType.values()) {
      if (!summary.counts.inactive) continue;
      const oldest = this.r.oldestWaiting.get(summary.type)?.created ?? null;
      summary.oldestWaitingMs = oldest === null ? null : Math.max(0, now - oldest);
    }
    return [...byType.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  }

  /** Sets a type's controls; a field left out keeps its value. */
  async set(type: string, controls: TypeControls): Promise<TypeSummary> {
    await this.store.write(() => {
      const current = this.w.one.get(type);
      const paused = controls.paused ?? current?.paused === 1;
      const concurrency =
        controls.concurrency === undefined ? (current?.concurrency ?? null) : controls.concurrency;
      this.w.upsert.get(type, paused ? 1 : 0, concurrency);
    });
    this.onChange(type);
    const summary = this.list().find((s) => s.type === type);
    return summary ?? { type, counts: {}, oldestWaitingMs: null, paused: false, concurrency: null };
  }
}
