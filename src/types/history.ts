// The queue's recent history, per minute and type: completions and failures counted as this
// instance commits them and added to the store by the sweep, and the waiting errands sampled
// once a minute. Each instance adds only its own events, so the stored sums are right however
// many instances share one database; nothing here ever reads the errands themselves.

import type { Clock } from "../clock.ts";
import type { LocalEvent } from "../events/bus.ts";
import { type Driver, deleteInBatches } from "../store/driver.ts";
import type { CountRow, MinuteDelta, WaitingCount } from "../store/records.ts";

export const MINUTE_MS = 60_000;
/** Minutes kept, and the most one read answers: 24 h. */
export const HISTORY_MINUTES = 1440;

/**
 * Most (minute, type) counts held for the next write. A sweep empties them each second; only
 * a store unreachable for long, with many types at work, fills them, and the counts past it
 * are dropped rather than held without bound.
 */
export const MAX_PENDING = 10_000;
/** Rows one write of prune deletes, and most writes one sweep makes. */
const PRUNE_BATCH = 10_000;
const PRUNE_ROUNDS = 10;

/** One minute as a client reads it. */
export interface HistoryMinute {
  minute: number;
  completed: number;
  failed: number;
  waiting: number | null;
}

export class History {
  /** Counted and not yet written, by minute and type. */
  private pending = new Map<string, MinuteDelta>();
  /** The minute of the last sample written; null before the first. */
  private sampled: number | null = null;
  /** Events not counted because `pending` was full. */
  dropped = 0;

  constructor(
    private readonly driver: Driver,
    private readonly clock: Clock,
  ) {}

  /** Counts a committed `completed` or `failed` event of this instance in the current minute. */
  observe(event: LocalEvent): void {
    if (event.event !== "completed" && event.event !== "failed") return;
    const { type } = event.errand as { type: string };
    const completed = event.event === "completed" ? 1 : 0;
    this.add({ minute: minuteOf(this.clock.now()), type, completed, failed: 1 - completed });
  }

  /**
   * The sweep's part, each second: in the first sweep of a minute the waiting errands are
   * sampled and minutes past the 24 h pruned; then what was counted is added.
   */
  async sweep(): Promise<void> {
    const minute = minuteOf(this.clock.now());
    if (minute !== this.sampled) {
      const waiting = waitingByType(await this.driver.reads.countsByTypeAndStatus());
      // Its own write: see PgTx.addMinuteCounts on the order rows are locked in.
      await this.driver.write((tx) => tx.setWaitingSample(minute, waiting));
      this.sampled = minute;
      const before = minute - (HISTORY_MINUTES - 1) * MINUTE_MS;
      await deleteInBatches(
        this.driver,
        (tx, n) => tx.pruneMinuteCounts(before, n),
        PRUNE_BATCH,
        PRUNE_ROUNDS,
      );
    }
    await this.flush();
  }

  /** Adds what was counted since the last flush, in one write; none when nothing was. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const deltas = [...this.pending.values()];
    this.pending = new Map();
    try {
      await this.driver.write((tx) => tx.addMinuteCounts(deltas));
    } catch (error) {
      // Not written: kept for the next flush, with what was counted meanwhile.
      for (const d of deltas) this.add(d);
      throw error;
    }
  }

  /** The last `count` minutes, oldest first, the current one last; of one type, or of all. */
  async minutes(count: number, type?: string): Promise<HistoryMinute[]> {
    const last = minuteOf(this.clock.now());
    const first = last - (count - 1) * MINUTE_MS;
    const stored = new Map<number, HistoryMinute>();
    for (const row of await this.driver.reads.minuteCounts(first, type)) {
      stored.set(row.minute, row);
    }
    return Array.from({ length: count }, (_, i) => {
      const minute = first + i * MINUTE_MS;
      return stored.get(minute) ?? { minute, completed: 0, failed: 0, waiting: null };
    });
  }

  private add(d: MinuteDelta): void {
    const key = `${d.minute}\u0000${d.type}`;
    const delta = this.pending.get(key);
    if (delta) {
      delta.completed += d.completed;
      delta.failed += d.failed;
    } else if (this.pending.size < MAX_PENDING) {
      this.pending.set(key, { ...d });
    } else {
      this.dropped += d.completed + d.failed;
    }
  }
}

/** The start of the minute `ms` falls in. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

/** Inactive errands of every type that has some. */
function waitingByType(rows: CountRow[]): WaitingCount[] {
  return rows
    .filter((row) => row.status === "inactive")
    .map((row) => ({ type: row.type, waiting: row.count }));
}
