// Events of errands: written to the event log inside the change's transaction, and handed to
// live listeners (SSE streams, long-poll waiters) only after that transaction commits.

import type { Errand, Log } from "../errands/model.ts";
import type { Store, Tx } from "../store/db.ts";
import type { EventWrites } from "../store/events.ts";

/** Most events one write of prune deletes, and most writes one prune makes: the sweep that
 *  calls it each second also checks TTLs, so it must not wait long on a backlog. */
const PRUNE_BATCH = 10_000;
const PRUNE_ROUNDS = 10;

export const EVENT_NAMES = [
  "created",
  "updated",
  "processing",
  "completed",
  "failed",
  "retry",
  "unblocked",
  "deleted",
] as const;

export type EventName = (typeof EVENT_NAMES)[number];

export interface ErrandEvent<E = unknown> {
  id: number;
  event: EventName;
  /** The errand after the change, without its `logs`. */
  errand: E;
  /** The log entry the change appended, if any. */
  log?: Log;
  /** The frame's data, exactly as stored: {"event":…,"errand":…} and "log" when there is one. */
  payload: string;
}

export type Listener = (event: ErrandEvent) => void;

export class EventBus {
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly sql: EventWrites,
    private readonly now: () => number,
  ) {}

  /**
   * Records the event in tx, with the errand without its logs and the entry `log` the change
   * appended; listeners hear it once tx commits.
   */
  record(tx: Tx, event: EventName, errand: Errand, log?: Log): void {
    // With its logs, an errand's every event grows with each line: O(n²) bytes for n lines.
    const { logs: _logs, ...withoutLogs } = errand;
    const data =
      log === undefined ? { event, errand: withoutLogs } : { event, errand: withoutLogs, log };
    const payload = JSON.stringify(data);
    const { lastInsertRowid } = this.sql.insert.run(event, this.now(), payload);
    const published: ErrandEvent = { id: Number(lastInsertRowid), ...data, payload };
    tx.afterCommit(() => {
      for (const listener of this.listeners) listener(published);
    });
  }

  /**
   * Deletes the events recorded before `before` (ms), PRUNE_BATCH per write so that a large
   * backlog (after a long stop, or a shorter retention) never holds up other writes, and at
   * most PRUNE_ROUNDS writes a call (the next sweep goes on); returns how many.
   */
  prune(store: Store, before: number): Promise<number> {
    return store.deleteInBatches(
      (n) => this.sql.prune.run(before, n).changes,
      PRUNE_BATCH,
      PRUNE_ROUNDS,
    );
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
