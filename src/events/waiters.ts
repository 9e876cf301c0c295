// Claims as workers make them, of one errand or of a batch: now, or held (long poll) until an
// errand of the type comes, first come first served.
//
// When an event leaves an errand `inactive`, the waiters of its type are served in order: a
// claim is made for the oldest waiter (one errand, or up to its batch's count), and the
// errands are handed over once their commit is durable. A waiter whose client went away is
// skipped; if it goes away after its claim was made, its errands are put back in the queue, so
// they are never lost. A waiter whose claim is made is not timed out: it is answered with its
// errands once that commit is durable.
//
// A claim a type's rate limit let take nothing tells when the next claim may start: the
// waiters of the type are served again then, by a timer (one per type), or by the sweep once
// the clock has passed that moment, whichever comes first.

import type { Clock } from "../clock.ts";
import type { Errand } from "../errands/model.ts";
import type { Staged } from "../store/driver.ts";
import type { RateHold } from "../store/records.ts";
import type { ErrandEvent, EventBus } from "./bus.ts";

/** A claim as it ran; `held` is the rate limit that let it take nothing, if one did. */
export interface StagedClaim<T> extends Staged<T> {
  held: RateHold | null;
}

/** What the waiters need from the errand service. */
export interface Claimer {
  /** Claims the next errand of the type: answered once the claim ran, durable later. */
  claimStaged(type: string): Promise<StagedClaim<Errand | null>>;
  /** Claims up to `count` errands of the type in one write: answered once it ran. */
  claimManyStaged(type: string, count: number): Promise<StagedClaim<Errand[]>>;
  /** Puts claimed errands back in the queue (their claimant went away). */
  release(errands: Errand[]): Promise<unknown>;
}

/** A rate limit that held a claim back, and in how many ms the next claim may start. */
export interface Held {
  max: number;
  perMs: number;
  retryAfterMs: number;
}

/** What a claim answers: the errands taken; with none, the rate limit that held them back. */
export interface Claimed {
  errands: Errand[];
  held: Held | null;
}

/** How many errands a claim takes: one (a single claim), or up to a batch's count. */
type Want = { batch: false } | { batch: true; count: number };

interface Waiter {
  want: Want;
  signal: AbortSignal;
  /** Its claim is under way: the wait no longer runs out (the errands are its own). */
  taken: () => void;
  settle: (errands: Errand[]) => void;
  fail: (error: unknown) => void;
}

export class Waiters {
  private readonly byType = new Map<string, Waiter[]>();
  /** Types being served now, and those to serve again once that ends. */
  private readonly serving = new Set<string>();
  private readonly again = new Set<string>();
  /** Per type, the rate limit its waiters wait out, and the timer that serves them after. */
  private readonly holds = new Map<string, { hold: RateHold; timer: Timer }>();
  private closing = false;

  constructor(
    private readonly claimer: Claimer,
    bus: EventBus,
    private readonly clock: Clock,
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
   * that time, or none. A claim that would wait queues behind those already waiting, even when
   * an errand is there for them but not yet announced (its commit still syncing).
   */
  claim(type: string, waitMs: number | undefined, signal: () => AbortSignal): Promise<Claimed> {
    return this.take(type, { batch: false }, waitMs, signal);
  }

  /**
   * A worker's batch claim: up to `count` errands of `type` now, or with `waitMs` as soon as
   * any comes within that time (then as many as can be claimed, up to `count`), or none. It
   * queues with single claims, in one line.
   */
  claimMany(
    type: string,
    count: number,
    waitMs: number | undefined,
    signal: () => AbortSignal,
  ): Promise<Claimed> {
    return this.take(type, { batch: true, count }, waitMs, signal);
  }

  private async take(
    type: string,
    want: Want,
    waitMs: number | undefined,
    signal: () => AbortSignal,
  ): Promise<Claimed> {
    if (waitMs === undefined || !this.byType.has(type)) {
      const staged = await this.stage(type, want);
      if (staged.result.length > 0) {
        const errands = await handOver(this.claimer, staged.result, staged.durable, signal());
        return { errands, held: null };
      }
      if (waitMs === undefined) return { errands: [], held: this.heldFor(staged.held) };
      if (staged.held) this.holdBack(type, staged.held);
    }
    const errands = await this.wait(type, want, waitMs, signal());
    // A wait that ran out under the rate limit tells when it lets the next claim start.
    const hold = errands.length > 0 ? null : (this.holds.get(type)?.hold ?? null);
    return { errands, held: this.heldFor(hold) };
  }

  /** The hold as a client reads it, timed from now; null once it has ended. */
  private heldFor(hold: RateHold | null): Held | null {
    if (hold === null) return null;
    const retryAfterMs = hold.until - this.clock.now();
    return retryAfterMs > 0 ? { max: hold.max, perMs: hold.perMs, retryAfterMs } : null;
  }

  /**
   * The waiters of `type` are served again when the hold ends: a timer of the type's, kept
   * for the earliest end heard of (there is one timer per type at most).
   */
  private holdBack(type: string, hold: RateHold): void {
    const known = this.holds.get(type);
    if (this.closing || (known && known.hold.until <= hold.until)) return;
    if (known) clearTimeout(known.timer);
    const timer = setTimeout(() => this.endHold(type), Math.max(1, hold.until - this.clock.now()));
    this.holds.set(type, { hold, timer });
  }

  private endHold(type: string): void {
    const known = this.holds.get(type);
    if (!known) return;
    clearTimeout(known.timer);
    this.holds.delete(type);
    if (this.byType.has(type)) this.serve(type);
  }

  /** Serves the waiters of every type whose hold has ended by the clock (the sweep's part). */
  serveEndedHolds(): void {
    const now = this.clock.now();
    for (const [type, { hold }] of [...this.holds]) if (hold.until <= now) this.endHold(type);
  }

  /** Claims what a waiter wants, in one write: answered once it ran, durable later. */
  private async stage(type: string, want: Want): Promise<StagedClaim<Errand[]>> {
    if (want.batch) return this.claimer.claimManyStaged(type, want.count);
    const { result, held, durable } = await this.claimer.claimStaged(type);
    return { result: result ? [result] : [], held, durable };
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

  /** Waits up to `ms` for errands of `type`; none when none came in time. */
  private wait(type: string, want: Want, ms: number, signal: AbortSignal): Promise<Errand[]> {
    if (this.closing || signal.aborted) return Promise.resolve([]);
    const waiting = new Promise<Errand[]>((resolve, reject) => {
      const queue = this.byType.get(type) ?? [];
      this.byType.set(type, queue);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.remove(type, waiter);
      };
      const waiter: Waiter = {
        want,
        signal,
        taken: () => clearTimeout(timer),
        settle: (errands) => {
          done();
          resolve(errands);
        },
        fail: (error) => {
          done();
          reject(error);
        },
      };
      const onAbort = () => waiter.settle([]);
      const timer = setTimeout(() => waiter.settle([]), ms);
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
    for (const { timer } of this.holds.values()) clearTimeout(timer);
    this.holds.clear();
    for (const queue of [...this.byType.values()]) {
      for (const waiter of [...queue]) waiter.settle([]);
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
      const first = this.firstLive(type);
      if (!first) return;
      const staged = await this.stage(type, first.want);
      let errands = staged.result;
      if (errands.length === 0) {
        if (staged.held) this.holdBack(type, staged.held);
        return;
      }
      // Handed out from the oldest waiter on: the one claimed for may have gone meanwhile.
      // Each is taken off the queue now, so the next errand goes to the next waiter; and its
      // time is no longer counted, or it could be answered "No jobs" while its errands commit.
      while (errands.length > 0) {
        const waiter = this.firstLive(type);
        if (!waiter) {
          void handOver(this.claimer, errands, staged.durable, AbortSignal.abort());
          return;
        }
        const mine = errands.slice(0, waiter.want.batch ? waiter.want.count : 1);
        errands = errands.slice(mine.length);
        this.byType.get(type)?.shift();
        waiter.taken();
        handOver(this.claimer, mine, staged.durable, waiter.signal).then(
          (handed) => waiter.settle(handed),
          (error) => waiter.fail(error),
        );
      }
    }
  }

  /** The oldest waiter of `type` whose client is still there; the others are let go. */
  private firstLive(type: string): Waiter | null {
    const queue = this.byType.get(type);
    while (queue && queue.length > 0) {
      const waiter = queue[0] as Waiter;
      if (!waiter.signal.aborted) return waiter;
      waiter.settle([]);
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
 * The errands claimed for a client once their commit is durable; or, if the client went away
 * meanwhile, none, the errands put back in the queue: a claim nobody receives is never lost.
 */
export async function handOver(
  claimer: Pick<Claimer, "release">,
  errands: Errand[],
  durable: Promise<void>,
  signal: AbortSignal,
): Promise<Errand[]> {
  await durable;
  if (!signal.aborted) return errands;
  void claimer.release(errands).catch(() => {});
  return [];
}
