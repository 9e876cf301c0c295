// Claims as workers make them: now, or held (long poll) until an errand of the type comes,
// first come first served.
//
// When an event leaves an errand `inactive`, the waiters of its type are served in order: a
// claim is made for the oldest waiter, and the errand is handed over once its commit is
// durable. A waiter whose client went away is skipped; if it goes away after its claim was
// made, the errand is put back in the queue, so it is never lost. A waiter whose claim is made
// is not timed out: it is answered with the errand once that commit is durable.

import type { Errand } from "../errands/model.ts";
import type { Staged } from "../store/driver.ts";
import type { ErrandEvent, EventBus } from "./bus.ts";

/** What the waiters need from the errand service. */
export interface Claimer {
  /** Claims the next errand of the type: answered once the claim ran, durable later. */
  claimStaged(type: string): Promise<Staged<Errand | null>>;
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
  /** Types being served now, and those to serve again once that ends. */
  private readonly serving = new Set<string>();
  private readonly again = new Set<string>();
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

  /**
   * A worker's claim: the next errand of `type` now, or with `waitMs` the first to come within
   * that time, or null. A claim that would wait queues behind those already waiting, even when
   * an errand is there for them but not yet announced (its commit still syncing).
   */
  async claim(
    type: string,
    waitMs: number | undefined,
    signal: () => AbortSignal,
  ): Promise<Errand | null> {
    if (waitMs === undefined || !this.byType.has(type)) {
      const staged = await this.claimer.claimStaged(type);
      if (staged.result) return handOver(this.claimer, staged.result, staged.durable, signal());
    }
    return waitMs === undefined ? null : this.wait(type, waitMs, signal());
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
  private wait(type: string, ms: number, signal: AbortSignal): Promise<Errand | null> {
    if (this.closing || signal.aborted) return Promise.resolve(null);
    const waiting = new Promise<Errand | null>((resolve, reject) => {
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
    // The first to wait claimed just before and found none: an errand may have come since.
    if (this.byType.get(type)?.length === 1) this.serve(type);
    return waiting;
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
    if (this.serving.has(type)) {
      this.again.add(type);
      return;
    }
    this.serving.add(type);
    void this.serveQueue(type)
      .catch(() => {
        // A failed claim leaves the waiters waiting: the next change of the type serves them.
      })
      .finally(() => {
        this.serving.delete(type);
        if (this.again.delete(type)) this.serve(type);
      });
  }

  private async serveQueue(type: string): Promise<void> {
    for (;;) {
      if (!this.firstLive(type)) return;
      const staged = await this.claimer.claimStaged(type);
      const errand = staged.result;
      if (errand === null) return;
      // Taken off the queue now, so the next errand goes to the next waiter; and its time is
      // no longer counted, or it could be answered "No jobs" while its errand commits.
      const waiter = this.firstLive(type);
      if (!waiter) {
        void handOver(this.claimer, errand, staged.durable, AbortSignal.abort());
        return;
      }
      this.byType.get(type)?.shift();
      waiter.taken();
      handOver(this.claimer, errand, staged.durable, waiter.signal).then(
        (handed) => waiter.settle(handed),
        (error) => waiter.fail(error),
      );
    }
  }

  /** The oldest waiter of `type` whose client is still there; the others are let go. */
  private firstLive(type: string): Waiter | null {
    const queue = this.byType.get(type);
    while (queue && queue.length > 0) {
      const waiter = queue[0] as Waiter;
      if (!waiter.signal.aborted) return waiter;
      waiter.settle(null);
    }
    return null;
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
 * The errand claimed for a client once its commit is durable; or, if the client went away
 * meanwhile, null, the errand put back in the queue: a claim nobody receives is never lost.
 */
export async function handOver(
  claimer: Pick<Claimer, "release">,
  errand: Errand,
  durable: Promise<void>,
  signal: AbortSignal,
): Promise<Errand | null> {
  await durable;
  if (!signal.aborted) return errand;
  void claimer.release(errand.id, errand.attempts).catch(() => {});
  return null;
}
