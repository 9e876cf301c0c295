// Long-poll claims: workers waiting for an errand of a type, served first come, first served.
//
// When an event leaves an errand `inactive`, the waiters of its type are served at once: each
// claim runs synchronously inside the open write group, so no other claim can slip in between.
// A waiter whose client went away is skipped; if it goes away after its claim was made, the
// errand is put back in the queue, so it is never lost. A waiter whose claim is made is not
// timed out: it is answered with the errand once that commit is on disk.

import type { Errand } from "../errands/model.ts";
import type { ErrandEvent, EventBus } from "./bus.ts";

/** What the waiters need from the errand service. */
export interface Claimer {
  /** Claims now inside the open group: null at once when none can be claimed. */
  claimNow(type: string): Promise<Errand> | null;
  /** Puts a claimed errand back in the queue (its claimant went away). */
  release(id: string, attempt: number): Promise<unknown>;
}

interface Waiter {
  signal: AbortSignal;
  /** Its claim is under way: the wait no longer runs out (the errand is its own). */
  taken: () => void;
  settle: (errand: Errand | null) => void;
  fail: (error: unknown) => void;
}

export class Waiters {
  private readonly byType = new Map<string, Waiter[]>();
  private closing = false;

  constructor(
    private readonly claimer: Claimer,
    bus: EventBus,
  ) {
    // Any change of a type's errands may let a waiter in: one queued, or a slot freed under
    // the type's concurrency limit. Serving costs nothing when nobody waits for the type.
    bus.subscribe((event: ErrandEvent) => {
      const type = (event.errand as Errand).type;
      if (this.byType.has(type)) this.serve(type);
    });
  }

  /** Whether anyone waits for an errand of `type`. */
  has(type: string): boolean {
    return this.byType.has(type);
  }

  get count(): number {
    let n = 0;
    for (const queue of this.byType.values()) n += queue.length;
    return n;
  }

  /** Waits up to `ms` for an errand of `type`; null when none came in time. */
  wait(type: string, ms: number, signal: AbortSignal): Promise<Errand | null> {
    if (this.closing || signal.aborted) return Promise.resolve(null);
    return new Promise<Errand | null>((resolve, reject) => {
      const queue = this.byType.get(type) ?? [];
      this.byType.set(type, queue);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.remove(type, waiter);
      };
      const waiter: Waiter = {
        signal,
        taken: () => clearTimeout(timer),
        settle: (errand) => {
          done();
          resolve(errand);
        },
        fail: (error) => {
          done();
          reject(error);
        },
      };
      const onAbort = () => waiter.settle(null);
      const timer = setTimeout(() => waiter.settle(null), ms);
      signal.addEventListener("abort", onAbort);
      queue.push(waiter);
    });
  }

  /** Answers every waiter at once with no errand (shutdown). */
  closeAll(): void {
    this.closing = true;
    for (const queue of [...this.byType.values()]) {
      for (const waiter of [...queue]) waiter.settle(null);
    }
  }

  /** Hands claimable errands of `type` to its waiters, oldest waiter first. */
  serve(type: string): void {
    const queue = this.byType.get(type);
    while (queue && queue.length > 0) {
      const waiter = queue[0] as Waiter;
      if (waiter.signal.aborted) {
        waiter.settle(null);
        continue;
      }
      const claimed = this.claimer.claimNow(type);
      if (claimed === null) return;
      // Taken off the queue now, so the next errand goes to the next waiter; and its time is no
      // longer counted, or it could be answered "No jobs" while its errand commits.
      queue.shift();
      waiter.taken();
      handOver(this.claimer, claimed, waiter.signal).then(
        (errand) => waiter.settle(errand),
        (error) => waiter.fail(error),
      );
    }
  }

  private remove(type: string, waiter: Waiter): void {
    const queue = this.byType.get(type);
    if (!queue) return;
    const at = queue.indexOf(waiter);
    if (at >= 0) queue.splice(at, 1);
    if (queue.length === 0) this.byType.delete(type);
  }
}

/**
 * The errand claimed for a client once its commit is on disk; or, if the client went away
 * meanwhile, null, the errand put back in the queue: a claim nobody receives is never lost.
 */
export async function handOver(
  claimer: Claimer,
  claimed: Errand | Promise<Errand>,
  signal: AbortSignal,
): Promise<Errand | null> {
  const errand = await claimed;
  if (!signal.aborted) return errand;
  void claimer.release(errand.id, errand.attempts).catch(() => {});
  return null;
}
