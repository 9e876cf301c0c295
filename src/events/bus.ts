// Events of errands: written to the event log inside the change's transaction. Listeners (SSE
// streams, long-poll waiters) hear every committed event of the log in order, whichever
// instance wrote it; observers (metrics) hear only this instance's, once committed.

import type { Errand, Log } from "../errands/model.ts";
import { type Driver, deleteInBatches, type LoggedEvent, type WriteTx } from "../store/driver.ts";
import { EVENT_NAMES, type EventName } from "../store/records.ts";

export { EVENT_NAMES, type EventName };

/** Most events one write of prune deletes, and most writes one prune makes: the sweep that
 *  calls it each second also checks TTLs, so it must not wait long on a backlog. */
const PRUNE_BATCH = 10_000;
const PRUNE_ROUNDS = 10;

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

/** An event as its writer made it: no id yet. */
export type LocalEvent = Omit<ErrandEvent, "id" | "payload">;

export class EventBus {
  private readonly listeners = new Set<Listener>();
  private readonly observers = new Set<(event: LocalEvent) => void>();

  constructor(
    driver: Driver,
    private readonly now: () => number,
  ) {
    driver.onEvent((logged) => {
      const event = toErrandEvent(logged);
      for (const listener of this.listeners) listener(event);
    });
  }

  /**
   * Records the event in tx, with the errand without its logs and the entry `log` the change
   * appended; listeners hear it once tx commits and the event has its place in the log.
   */
  async record(tx: WriteTx, event: EventName, errand: Errand, log?: Log | null): Promise<void> {
    // With its logs, an errand's every event grows with each line: O(n²) bytes for n lines.
    const { logs: _logs, ...withoutLogs } = errand;
    const data: LocalEvent = log
      ? { event, errand: withoutLogs, log }
      : { event, errand: withoutLogs };
    await tx.appendEvent(event, this.now(), JSON.stringify(data), data);
    if (this.observers.size > 0) {
      tx.afterCommit(() => {
        for (const observer of this.observers) observer(data);
      });
    }
  }

  /**
   * Deletes the events recorded before `before` (ms), PRUNE_BATCH per write so that a large
   * backlog (after a long stop, or a shorter retention) never holds up other writes, and at
   * most PRUNE_ROUNDS writes a call (the next sweep goes on); returns how many.
   */
  prune(driver: Driver, before: number): Promise<number> {
    return deleteInBatches(driver, (tx, n) => tx.pruneEvents(before, n), PRUNE_BATCH, PRUNE_ROUNDS);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hears the events this instance writes, once committed (not those of other instances). */
  observe(observer: (event: LocalEvent) => void): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }
}

/** The event as listeners take it: the writer's own object when it was this instance. */
function toErrandEvent(logged: LoggedEvent): ErrandEvent {
  const data = (logged.detail ?? JSON.parse(logged.payload)) as LocalEvent;
  return { id: logged.id, ...data, payload: logged.payload };
}
