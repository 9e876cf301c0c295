// Worker: claims errands of one type in batches sized to its free slots (long polls), runs the
// handler on each up to `concurrency` at once, keeps them alive with heartbeats, and reports
// every outcome, with its attempt, through acks.

import { backoffDelay, sleep } from "./backoff.ts";
import type { ErrandsClient } from "./client.ts";
import { ConflictError, ErrandsError, errorFor, NotFoundError } from "./errors.ts";
import type { AckItem, Errand, JsonObject, Severity } from "./types.ts";

/** What a handler gets for one errand. */
export interface ErrandContext {
  errand: Errand;
  /** Sets the errand's progress, 0 to 100. */
  progress(percent: number): Promise<void>;
  /** Appends a log entry to the errand. */
  log(severity: Severity, message: string): Promise<void>;
  /**
   * Aborted once the errand is no longer this worker's: a heartbeat or a report was refused
   * because its attempt was superseded (it expired and was claimed again, or was retried).
   */
  signal: AbortSignal;
}

/** Answers the errand's results (or nothing); a throw fails it with the error's message and stack. */
export type Handler = (
  context: ErrandContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler may return nothing (no results)
) => Promise<JsonObject | undefined | void> | JsonObject | undefined | void;

export interface WorkerOptions {
  /** The type of errand to claim. */
  type: string;
  handler: Handler;
  /** Errands run at once (1 unless given). */
  concurrency?: number;
  /** Seconds each claim waits for errands to come (a long poll): 20 unless given, at most 60. */
  wait?: number;
  /**
   * Told of what goes wrong: a claim or an ack that failed (then tried again after a backoff),
   * a heartbeat refused, an item of an ack refused (its attempt was superseded: dropped).
   * `console.error` unless given.
   */
  onError?: (error: unknown, errand?: Errand) => void;
  /** Backoff after a failed claim or ack: a random delay up to base·2^n ms, at most max. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** Most errands one claim takes (the server's limit). */
const MAX_CLAIM = 100;
/** Most reports one ack carries (the server's limit). */
const MAX_ACK = 1000;
const ACK_CALL = "POST /v1/errands/ack";

interface PendingAck {
  item: AckItem;
  errand: Errand;
  done: () => void;
}

export class Worker {
  readonly type: string;
  readonly concurrency: number;
  private readonly wait: number;
  private readonly handler: Handler;
  private readonly onError: (error: unknown, errand?: Errand) => void;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  /** Handlers running now: the slots taken. */
  private running = 0;
  /** Each errand claimed and not yet reported, settled once its ack is answered. */
  private readonly inHand = new Set<Promise<void>>();
  private readonly acks: PendingAck[] = [];
  private sending = false;
  private closing = false;
  /** Aborts the pending claim and the claim loop's backoff on close(). */
  private readonly stopping = new AbortController();
  private wakeClaims: (() => void) | null = null;
  private readonly claiming: Promise<void>;

  constructor(
    private readonly client: ErrandsClient,
    options: WorkerOptions,
  ) {
    const concurrency = options.concurrency ?? 1;
    const wait = options.wait ?? 20;
    if (options.type === "") throw new TypeError("a worker needs a type");
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError("concurrency must be a whole number, at least 1");
    }
    if (!(wait > 0 && wait <= 60)) throw new TypeError("wait must be in (0, 60] seconds");
    this.type = options.type;
    this.concurrency = concurrency;
    this.wait = wait;
    this.handler = options.handler;
    this.onError = options.onError ?? ((error) => console.error("errands worker:", error));
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.claiming = this.claimLoop();
  }

  /** Errands claimed and not yet reported. */
  get size(): number {
    return this.inHand.size;
  }

  /**
   * Stops claiming (the pending long poll is abandoned), then resolves once every errand in
   * hand has run and its outcome has been reported.
   */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.stopping.abort(new Error("the worker is closing"));
      this.wakeClaims?.();
    }
    await this.claiming;
    while (this.inHand.size > 0) await Promise.all([...this.inHand]);
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.closing) {
      const free = this.concurrency - this.running;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          this.wakeClaims = resolve;
        });
        this.wakeClaims = null;
        continue;
      }
      let errands: Errand[];
      try {
        errands = await this.client.claim(this.type, {
          count: Math.min(free, MAX_CLAIM),
          wait: this.wait,
          signal: this.stopping.signal,
        });
        failures = 0;
      } catch (error) {
        if (this.closing) break;
        // The server is away or refused: told, then asked again after a growing pause.
        this.onError(error);
        await sleep(
          backoffDelay(failures++, this.baseDelayMs, this.maxDelayMs),
          this.stopping.signal,
        );
        continue;
      }
      // An answer that came as close() was called is ours all the same: run it.
      for (const errand of errands) this.run(errand);
    }
  }

  private run(errand: Errand): void {
    this.running++;
    const attempt = errand.attempts;
    const lease = new AbortController();
    /** A refusal that means the errand is no longer ours: the handler is told by its signal. */
    const check = (error: unknown) => {
      if (error instanceof ConflictError || error instanceof NotFoundError) lease.abort(error);
    };
    const stopBeating = this.heartbeats(errand, lease, check);
    const context: ErrandContext = {
      errand,
      signal: lease.signal,
      progress: async (percent) => {
        await this.client.progress(errand.id, percent, { attempt }).catch((error) => {
          check(error);
          throw error;
        });
      },
      log: async (severity, message) => {
        await this.client.log(errand.id, severity, message, { attempt }).catch((error) => {
          check(error);
          throw error;
        });
      },
    };
    const settled = (async () => {
      let item: AckItem;
      try {
        const results = await this.handler(context);
        item = { id: errand.id, attempt, completed: completion(results) };
      } catch (error) {
        item = { id: errand.id, attempt, failed: { reason: reasonOf(error) } };
      }
      this.running--;
      this.wakeClaims?.();
      // Heartbeats go on until the outcome is reported: an ack may wait for the server.
      await this.report(item, errand);
      stopBeating();
    })();
    this.inHand.add(settled);
    void settled.finally(() => this.inHand.delete(settled));
  }

  /** Heartbeats every third of `options.heartbeat` until stopped or the errand is lost. */
  private heartbeats(
    errand: Errand,
    lease: AbortController,
    check: (error: unknown) => void,
  ): () => void {
    const seconds = errand.options.heartbeat;
    if (seconds === undefined || seconds <= 0) return () => {};
    let beating = false;
    const timer = setInterval(
      async () => {
        if (beating || lease.signal.aborted) return;
        beating = true;
        try {
          await this.client.heartbeat(errand.id, { attempt: errand.attempts });
        } catch (error) {
          check(error);
          this.onError(error, errand);
        } finally {
          beating = false;
        }
      },
      (seconds * 1000) / 3,
    );
    return () => clearInterval(timer);
  }

  /** Queues a report for the next ack; settles once the server has answered it. */
  private report(item: AckItem, errand: Errand): Promise<void> {
    return new Promise((done) => {
      this.acks.push({ item, errand, done });
      this.flush();
    });
  }

  /**
   * Sends the queued reports at once, in one ack; those queued while it is on its way go in the
   * next, as soon as it returns. So an idle worker reports without delay, and a busy one
   * gathers its reports into batches as large as the round trip makes them.
   */
  private flush(): void {
    if (this.sending || this.acks.length === 0) return;
    this.sending = true;
    const batch = this.acks.splice(0, MAX_ACK);
    void this.deliver(batch).finally(() => {
      this.sending = false;
      this.flush();
    });
  }

  private async deliver(batch: PendingAck[]): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        const results = await this.client.ack(batch.map((pending) => pending.item));
        results.forEach((result, i) => {
          const pending = batch[i];
          // 404 or 409: the attempt was superseded (or the errand deleted); nothing changed.
          if (pending && "error" in result) {
            this.onError(errorFor(result.status, result.error, ACK_CALL), pending.errand);
          }
        });
        for (const pending of batch) pending.done();
        return;
      } catch (error) {
        if (error instanceof ErrandsError && (error.status === 400 || error.status === 413)) {
          await this.refused(batch, error);
          return;
        }
        // The server is away: the reports wait (their heartbeats go on) and are sent again.
        this.onError(error);
        await sleep(backoffDelay(failures, this.baseDelayMs, this.maxDelayMs));
      }
    }
  }

  /**
   * An ack refused whole (a body too large, results the schema refuses): each report goes on
   * its own, so one does not sink the others; results too large fail their errand instead.
   */
  private async refused(batch: PendingAck[], error: ErrandsError): Promise<void> {
    if (batch.length > 1) {
      for (const pending of batch) await this.deliver([pending]);
      return;
    }
    const [pending] = batch;
    if (pending === undefined) return;
    this.onError(error, pending.errand);
    if (pending.item.completed !== undefined) {
      const reason = `the results could not be reported: ${error.message}`;
      const { id, attempt } = pending.item;
      await this.deliver([{ ...pending, item: { id, attempt, failed: { reason } } }]);
      return;
    }
    pending.done();
  }
}

/** The `completed` of an ack for what a handler answered: its results, if an object. */
function completion(results: unknown): { results?: JsonObject } {
  if (results === undefined || results === null) return {};
  if (typeof results !== "object" || Array.isArray(results)) {
    throw new TypeError(`the handler answered ${JSON.stringify(results)}, not an object`);
  }
  // Something JSON cannot write (a cycle, a BigInt) fails this errand, not the whole ack.
  JSON.stringify(results);
  return { results: results as JsonObject };
}

/** A failed errand's reason: the error's message and its stack. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const head = `${error.name}: ${error.message}`;
  if (error.stack === undefined) return head;
  return error.stack.includes(error.message) ? error.stack : `${head}\n${error.stack}`;
}
