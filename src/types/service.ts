// Per-type controls (paused, concurrency, rate limit) and the per-type view of the queue.

import type { Clock } from "../clock.ts";
import type { Driver } from "../store/driver.ts";
import type { TypeControls, TypeSummary } from "./model.ts";

export class TypeService {
  constructor(
    private readonly driver: Driver,
    private readonly clock: Clock,
    /** Told when a type may have become claimable (unpaused, more concurrency, a higher rate). */
    private readonly onChange: (type: string) => void = () => {},
  ) {}

  /** Every type that has errands or controls: counts by status, oldest wait, controls. */
  async list(): Promise<TypeSummary[]> {
    const reads = this.driver.reads;
    const byType = new Map<string, TypeSummary>();
    const entry = (type: string): TypeSummary => {
      let summary = byType.get(type);
      if (!summary) {
        summary = uncontrolled(type);
        byType.set(type, summary);
      }
      return summary;
    };
    for (const row of await reads.countsByTypeAndStatus()) {
      entry(row.type).counts[row.status] = row.count;
    }
    const now = this.clock.now();
    for (const control of await reads.typeControls()) {
      const summary = entry(control.type);
      summary.paused = control.paused;
      summary.concurrency = control.concurrency;
      summary.rateLimit = control.rateLimit;
      if (control.rateLimit) {
        const since = now - control.rateLimit.perMs;
        summary.claimsInWindow = await reads.claimStartsSince(control.type, since);
      }
    }
    for (const summary of byType.values()) {
      if (!summary.counts.inactive) continue;
      const oldest = await reads.oldestWaiting(summary.type);
      summary.oldestWaitingMs = oldest === null ? null : Math.max(0, now - oldest);
    }
    return [...byType.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  }

  /** Sets a type's controls; a field left out keeps its value. */
  async set(type: string, controls: TypeControls): Promise<TypeSummary> {
    // Only the limit's own fields are kept: the body may carry others (they are ignored).
    const rate = controls.rateLimit && {
      max: controls.rateLimit.max,
      perMs: controls.rateLimit.perMs,
    };
    await this.driver.write(async (tx) => {
      const current = await tx.typeControl(type);
      await tx.setTypeControl({
        type,
        paused: controls.paused ?? current?.paused ?? false,
        concurrency:
          controls.concurrency === undefined
            ? (current?.concurrency ?? null)
            : controls.concurrency,
        rateLimit: rate === undefined ? (current?.rateLimit ?? null) : rate,
      });
    });
    this.onChange(type);
    const summary = (await this.list()).find((s) => s.type === type);
    return summary ?? uncontrolled(type);
  }
}

/** A type with no errands counted yet and no controls. */
function uncontrolled(type: string): TypeSummary {
  return {
    type,
    counts: {},
    oldestWaitingMs: null,
    paused: false,
    concurrency: null,
    rateLimit: null,
    claimsInWindow: null,
  };
}
