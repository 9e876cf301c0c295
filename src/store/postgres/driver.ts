// The PostgreSQL engine, for several instances of the server on one database.
//
// Each write is one transaction on a pooled connection; PostgreSQL groups the WAL flushes of
// concurrent commits itself, and with synchronous_commit on a commit is durable when it
// returns. Events are inserted without a place in the log; after each commit that wrote some,
// the sequencer gives every committed, unplaced event the next places in one statement under
// the event head's row lock, then NOTIFYs. Every instance's tail LISTENs, reads the log from
// the last place it delivered, and hands the events to its listeners in order, so a reader
// resuming after place n never misses an event that committed late.

import { SQL } from "bun";
import { StorageUnavailable } from "../../errors.ts";
import type { Driver, LoggedEvent, Staged, WriteTx } from "../driver.ts";
import { PgReads, PgTx } from "./access.ts";
import m0001 from "./migrations/0001_schema.sql" with { type: "text" };
import m0002 from "./migrations/0002_dashboard_lists.sql" with { type: "text" };
import m0003 from "./migrations/0003_minute_history.sql" with { type: "text" };
import m0004 from "./migrations/0004_type_and_status.sql" with { type: "text" };
import m0005 from "./migrations/0005_schedules.sql" with { type: "text" };
import m0006 from "./migrations/0006_rate_limits.sql" with { type: "text" };

/** Numbered migrations; index i holds version i + 1. */
const MIGRATIONS: string[] = [m0001, m0002, m0003, m0004, m0005, m0006];

/** How long the sequencer waits for more commits before placing their events. */
const SEQUENCE_GATHER_MS = 2;
/** Events a tail reads at a time. */
const TAIL_PAGE = 1000;
/** The tail and the sequencer also run this often, in case a notification was lost. */
const POLL_MS = 1000;
const LOG_CHANNEL = "errands_log";
/** The advisory lock migrations take, so instances starting together migrate once. */
const MIGRATION_LOCK = 7_203_114_042;

export interface PostgresOptions {
  /** Connections in the pool. */
  poolSize?: number;
  /** A schema of its own, made if missing (tests give each app one). */
  schema?: string;
}

export class PostgresDriver implements Driver {
  readonly reads: PgReads;
  private readonly sql: SQL;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly eventListeners = new Set<(event: LoggedEvent) => void>();
  /** The last place delivered to the listeners. */
  private delivered = 0;
  private tailing: Promise<void> | null = null;
  private tailAgain = false;
  private sequencing: Promise<void> | null = null;
  private sequenceAgain = false;
  private subscription: SQL.ListenSubscription | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Writes in flight, so close() can wait for them. */
  private inFlight = new Set<Promise<unknown>>();

  /** Settles once connected, migrated and tailing the log; every method waits for it. */
  readonly ready: Promise<void>;

  /** Connects, migrates (once, whichever instance comes first), and starts the event tail. */
  constructor(url: string, options: PostgresOptions = {}) {
    const sql = new SQL(url, {
      max: options.poolSize ?? 10,
      // A 2xx means committed and flushed, whatever the database's own default says.
      connection: {
        synchronous_commit: "on",
        ...(options.schema ? { search_path: options.schema } : {}),
      },
      // A connection that cannot be made in time is a 503, not a request left hanging.
      connectionTimeout: 5,
    });
    this.sql = sql;
    this.ready = (async () => {
      if (options.schema) await sql`CREATE SCHEMA IF NOT EXISTS ${sql(options.schema)}`;
      await migrate(sql);
      await this.startTail();
    })();
    // Whoever awaits `ready` hears the failure; a method called meanwhile answers a 503.
    this.ready.catch(() => {});
    this.reads = new GuardedReads(sql, async () => {
      await this.ready;
      if (this.closed) throw new StorageUnavailable("the store is closed");
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  get isClosing(): boolean {
    return this.closing !== null;
  }

  onEvent(listener: (event: LoggedEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  async write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    return (await this.stage(fn)).result;
  }

  /** On PostgreSQL a write is durable once it has run: its commit returned. */
  async stage<T>(fn: (tx: WriteTx) => Promise<T>): Promise<Staged<T>> {
    try {
      await this.ready;
    } catch (error) {
      throw new StorageUnavailable(`the database could not be opened: ${describe(error)}`);
    }
    if (this.closed) throw new StorageUnavailable("the store is closed");
    for (let attempt = 1; ; attempt++) {
      const after: Array<() => void> = [];
      let events = false;
      const run = this.sql.begin(async (sql) => {
        const tx = new PgTx(sql, after);
        const result = await fn(tx);
        await tx.flushCounts();
        events = tx.eventsAppended;
        return result;
      });
      this.inFlight.add(run);
      let result: T;
      try {
        result = (await run) as T;
      } catch (error) {
        // Rolled back whole, only to let another transaction through: run it again, afresh.
        if (attempt < MAX_ATTEMPTS && abortedForAnother(error) && !this.closed) {
          await Bun.sleep(Math.random() * 5 * attempt);
          continue;
        }
        throw unavailable(error);
      } finally {
        this.inFlight.delete(run);
      }
      for (const f of after) {
        try {
          f();
        } catch (error) {
          console.error("after-commit listener failed:", error);
        }
      }
      if (events) this.sequence();
      return { result, durable: Promise.resolve() };
    }
  }

  /** Gives committed events their places; run after each commit that wrote some. */
  private sequence(): void {
    if (this.sequencing) {
      this.sequenceAgain = true;
      return;
    }
    this.sequencing = (async () => {
      do {
        // Commits that land within a moment share one run: one transaction, one NOTIFY and
        // one read of the log by every instance, for all of them.
        await Bun.sleep(SEQUENCE_GATHER_MS);
        this.sequenceAgain = false;
        try {
          const placed = await this.sql.begin(async (sql) => {
            const [head] = await sql`SELECT newest FROM event_head WHERE one = 1 FOR UPDATE`;
            const rows = await sql`
              UPDATE events e SET id = ${head.newest}::bigint + n.rank
                FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS rank
                        FROM events WHERE id IS NULL) n
               WHERE e.seq = n.seq
              RETURNING e.id`;
            if (rows.length > 0) {
              await sql`UPDATE event_head SET newest = newest + ${rows.length} WHERE one = 1`;
              await sql.notify(LOG_CHANNEL, "");
            }
            return rows.length;
          });
          if (placed > 0) this.tail();
        } catch {
          // The database is away: the poll tries again.
        }
      } while (this.sequenceAgain && !this.closed);
      this.sequencing = null;
    })();
  }

  private async startTail(): Promise<void> {
    const [head] = await this.sql`SELECT newest FROM event_head WHERE one = 1`;
    this.delivered = Number(head?.newest ?? 0);
    // Events of a previous run, committed but never placed (it stopped in between).
    this.sequence();
    this.subscription = await this.sql.listen(
      LOG_CHANNEL,
      () => this.tail(),
      // After a reconnect, catch up from the table: notifications sent meanwhile are lost.
      () => this.tail(),
    );
    this.timer = setInterval(() => {
      this.sequence();
      this.tail();
    }, POLL_MS);
  }

  /** Reads the log after the last place delivered and hands it to the listeners, in order. */
  private tail(): void {
    if (this.tailing) {
      this.tailAgain = true;
      return;
    }
    this.tailing = (async () => {
      do {
        this.tailAgain = false;
        try {
          for (;;) {
            const events = await this.reads.eventsAfter(this.delivered, TAIL_PAGE);
            for (const event of events) {
              this.delivered = event.id;
              for (const listener of this.eventListeners) {
                try {
                  listener(event);
                } catch (error) {
                  console.error("event listener failed:", error);
                }
              }
            }
            if (events.length < TAIL_PAGE) break;
          }
        } catch {
          // The database is away: the next notification or poll goes on from here.
        }
      } while (this.tailAgain && !this.closed);
      this.tailing = null;
    })();
  }

  /** Folds the per-type count deltas into the counts (any instance; each delta once). */
  async maintain(): Promise<void> {
    await this.ready;
    try {
      await this.sql`
        WITH moved AS (DELETE FROM type_count_deltas RETURNING type, status, delta)
        INSERT INTO type_counts (type, status, count)
        SELECT type, status, sum(delta) FROM moved GROUP BY type, status
        ON CONFLICT (type, status) DO UPDATE SET count = type_counts.count + excluded.count`;
    } catch (error) {
      throw unavailable(error);
    }
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.ready.catch(() => {});
    await Promise.allSettled([...this.inFlight]);
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    await this.subscription?.unlisten().catch(() => {});
    await this.sequencing;
    await this.tailing;
    await this.sql.close();
  }
}

/** Reads of committed data that say 503, not 500, once the driver is closed or the database away. */
class GuardedReads extends PgReads {
  constructor(
    sql: SQL,
    private readonly usable: () => Promise<void>,
  ) {
    super(sql);
    // Every read method: refused when closed, and a database error becomes a 503.
    for (const name of Object.getOwnPropertyNames(PgReads.prototype)) {
      if (name === "constructor") continue;
      const method = (PgReads.prototype as unknown as Record<string, (...a: unknown[]) => unknown>)[
        name
      ];
      if (typeof method !== "function") continue;
      (this as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        try {
          await this.usable();
          return await method.apply(this, args);
        } catch (error) {
          throw unavailable(error);
        }
      };
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An error of the database client (connection lost, refused, timed out) as a 503. */
/** Times a write is run when PostgreSQL keeps choosing it to abort (a deadlock's victim). */
const MAX_ATTEMPTS = 5;

/**
 * Whether PostgreSQL rolled the transaction back to let another one through: a deadlock's
 * victim (40P01) or a serialization failure (40001). Nothing of it was kept, so running it
 * again is safe; any other error is the write's own.
 */
function abortedForAnother(error: unknown): boolean {
  const state = (error as { errno?: unknown }).errno;
  return error instanceof SQL.SQLError && (state === "40P01" || state === "40001");
}

function unavailable(error: unknown): unknown {
  if (error instanceof SQL.SQLError) return new StorageUnavailable(error.message);
  return error;
}

/** Applies the migrations not yet applied, under an advisory lock held across instances. */
async function migrate(sql: SQL): Promise<void> {
  const conn = await sql.reserve();
  try {
    await conn`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      await conn`CREATE TABLE IF NOT EXISTS errands_schema (version integer NOT NULL)`;
      const [row] = await conn`SELECT max(version) AS version FROM errands_schema`;
      const version = Number(row?.version ?? 0);
      if (version > MIGRATIONS.length) {
        throw new Error(
          `the database is at schema version ${version}, newer than this server (${MIGRATIONS.length})`,
        );
      }
      for (let v = version; v < MIGRATIONS.length; v++) {
        await conn.begin(async (tx) => {
          await tx.unsafe(MIGRATIONS[v] ?? "");
          await tx`INSERT INTO errands_schema (version) VALUES (${v + 1})`;
        });
      }
    } finally {
      await conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    conn.release();
  }
}
