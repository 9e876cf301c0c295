// The SQLite engine: opens the database, migrates it, and runs writes under group commit.
//
// Writes run one at a time, each inside a savepoint of the open group's transaction (a
// failure rolls back only its own changes), so savepoints never interleave however a write
// awaits. Writes of requests that arrive together share one transaction and so one fsync: each write
// runs at once inside a savepoint of the open group (a failure rolls back only its own changes),
// and its promise settles only after the COMMIT that holds it is on disk. Reads go through a
// second, read-only connection, so they only ever see committed data.
//
// Durability: SQLite runs WAL with synchronous=NORMAL, so COMMIT itself writes the WAL without
// waiting for the disk; with ERRANDS_SYNC=full the store then fsyncs the WAL file on libuv's
// thread pool and only then answers the group. The event loop goes on serving (and gathering
// the next group) while the disk syncs, instead of blocking in SQLite's own fsync; the next
// group commits when that sync ends, so one fsync is in flight at a time and each covers every
// write that arrived meanwhile. Groups are answered in commit order, so events are published in
// id order.

import { Database, type Statement } from "bun:sqlite";
import { closeSync, fsync, fsyncSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { StorageUnavailable } from "../../errors.ts";
import type { Driver, LoggedEvent, Staged, WriteTx } from "../driver.ts";
import { ReadStatements, SqliteReads, SqliteTx, WriteStatements } from "./access.ts";
import { TypeCounts } from "./counts.ts";
import m0001 from "./migrations/0001_errands.sql" with { type: "text" };
import m0002 from "./migrations/0002_pipelines.sql" with { type: "text" };
import m0003 from "./migrations/0003_queue_depth.sql" with { type: "text" };
import m0004 from "./migrations/0004_worker_safety.sql" with { type: "text" };
import m0005 from "./migrations/0005_lighter_writes.sql" with { type: "text" };
import m0006 from "./migrations/0006_pipeline_finished.sql" with { type: "text" };
import m0007 from "./migrations/0007_write_probe.sql" with { type: "text" };
import m0008 from "./migrations/0008_active_by_type.sql" with { type: "text" };
import m0009 from "./migrations/0009_dashboard_lists.sql" with { type: "text" };
import m0010 from "./migrations/0010_minute_history.sql" with { type: "text" };
import m0011 from "./migrations/0011_type_and_status.sql" with { type: "text" };
import m0012 from "./migrations/0012_schedules.sql" with { type: "text" };
import m0013 from "./migrations/0013_rate_limits.sql" with { type: "text" };

/** Numbered migrations; index i holds version i + 1. */
const MIGRATIONS: string[] = [
  m0001,
  m0002,
  m0003,
  m0004,
  m0005,
  m0006,
  m0007,
  m0008,
  m0009,
  m0010,
  m0011,
  m0012,
  m0013,
];

/** Whether each commit is fsync'd before it is answered (full), or left to the OS (normal). */
export type SyncMode = "full" | "normal";

interface Member {
  resolve: () => void;
  reject: (error: unknown) => void;
  after: Array<() => void>;
}

export class SqliteDriver implements Driver {
  readonly writer: Database;
  readonly reader: Database;
  readonly reads: SqliteReads;
  private readonly statements: WriteStatements;
  private readonly eventListeners = new Set<(event: LoggedEvent) => void>();
  /** A write is running: the next ones wait their turn. */
  private busy = false;
  private readonly queue: Array<() => void> = [];
  /** Errands per type and status, written with each group (see counts.ts). */
  readonly counts: TypeCounts;
  private group: Member[] | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Whether each commit is fsync'd before it is answered (ERRANDS_SYNC=full). */
  private readonly durable: boolean;
  /** The WAL file, opened at the first commit, to fsync it. */
  private walFd: number | null = null;
  /** Settles when every committed group so far has been answered, in order. */
  private answered: Promise<void> = Promise.resolve();
  /** Committed groups still waiting for their fsync. */
  private syncing = 0;
  /** Commits made so far, and the writes they held: the group commit's effect, for metrics. */
  commits = 0;
  /** The transaction statements, prepared once: they run for every write. */
  private readonly tx: Record<
    "begin" | "savepoint" | "release" | "rollbackTo" | "commit",
    Statement
  >;
  committedWrites = 0;

  /** Flushes a file to disk: fsync on libuv's thread pool (tests may hold it back). */
  private readonly flush: (fd: number) => Promise<void>;

  constructor(
    readonly path: string,
    options: { sync?: SyncMode; flush?: (fd: number) => Promise<void> } = {},
  ) {
    this.flush = options.flush ?? fsyncOffThread;
    mkdirSync(dirname(path), { recursive: true });
    this.writer = new Database(path, { create: true, strict: true });
    this.writer.run("PRAGMA journal_mode = WAL");
    this.durable = options.sync !== "normal";
    // The store fsyncs the WAL itself after COMMIT when durable (see above).
    this.writer.run("PRAGMA synchronous = NORMAL");
    this.writer.run("PRAGMA busy_timeout = 5000");
    // Statement journals (savepoints, triggers) in memory, not in temp files: a write with a
    // trigger cost three times as much with them on disk.
    this.writer.run("PRAGMA temp_store = MEMORY");
    this.writer.run("PRAGMA cache_size = -8000");
    migrate(this.writer);
    this.counts = new TypeCounts(this.writer);
    this.reader = new Database(path, { readonly: true, strict: true });
    this.reader.run("PRAGMA busy_timeout = 5000");
    this.reader.run("PRAGMA temp_store = MEMORY");
    this.reader.run("PRAGMA cache_size = -4000");
    this.tx = {
      begin: this.writer.prepare("BEGIN IMMEDIATE"),
      savepoint: this.writer.prepare("SAVEPOINT request"),
      release: this.writer.prepare("RELEASE request"),
      rollbackTo: this.writer.prepare("ROLLBACK TO request"),
      commit: this.writer.prepare("COMMIT"),
    };
    this.statements = new WriteStatements(this.writer);
    this.reads = new SqliteReads(new ReadStatements(this.reader), () => !this.closed);
  }

  onEvent(listener: (event: LoggedEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  private readonly publish = (event: LoggedEvent): void => {
    for (const listener of this.eventListeners) listener(event);
  };

  async write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    const { result, durable } = await this.stage(fn);
    await durable;
    return result;
  }

  /** Runs fn in the open group's transaction, after the writes before it. */
  async stage<T>(fn: (tx: WriteTx) => Promise<T>): Promise<Staged<T>> {
    if (this.busy) await new Promise<void>((turn) => this.queue.push(turn));
    else this.busy = true;
    try {
      return await this.run(fn);
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else {
        this.busy = false;
        if (this.commitWaiting) this.commit();
      }
    }
  }

  /** A commit came due while a write ran: it runs once no write does. */
  private commitWaiting = false;

  private async run<T>(fn: (tx: WriteTx) => Promise<T>): Promise<Staged<T>> {
    if (this.closed) throw new StorageUnavailable("the store is closed");
    try {
      if (this.group === null) {
        this.tx.begin.run();
        this.group = [];
        // While a commit is being synced, the group stays open and gathers more writes: the
        // end of that sync commits it (one fsync in flight, each covering more writes).
        if (this.syncing === 0) setImmediate(() => this.commit());
      }
    } catch (error) {
      throw new StorageUnavailable(describe(error));
    }
    const after: Array<() => void> = [];
    let result: T;
    this.tx.savepoint.run();
    this.counts.writeStarted();
    try {
      result = await fn(new SqliteTx(this.statements, this.counts, after, this.publish));
      this.tx.release.run();
    } catch (error) {
      this.tx.rollbackTo.run();
      this.tx.release.run();
      this.counts.writeEnded(false);
      throw error;
    }
    this.counts.writeEnded(true);
    const group = this.group;
    const durable = new Promise<void>((resolve, reject) => {
      group.push({ resolve, reject, after });
    });
    // A write whose caller never awaits `durable` must not leave an unhandled rejection.
    durable.catch(() => {});
    return { result, durable };
  }

  /**
   * Runs a write that deletes at most `batch` rows, as its own write, again and again until one
   * deletes fewer or `rounds` have run: a large backlog never holds up other writes, and the
   * rest waits for the next call. Answers how many went.
   */
  /** Commits the open group now (also run by a timer after each event-loop turn). */
  commit(): void {
    const group = this.group;
    if (group === null) return;
    if (this.busy) {
      this.commitWaiting = true;
      return;
    }
    this.commitWaiting = false;
    this.group = null;
    try {
      this.counts.flush();
      this.tx.commit.run();
    } catch (error) {
      try {
        this.writer.run("ROLLBACK");
      } catch {
        // Already rolled back by SQLite.
      }
      this.counts.groupEnded(false);
      const failure = new StorageUnavailable(describe(error));
      for (const member of group) member.reject(failure);
      return;
    }
    this.counts.groupEnded(true);
    this.commits++;
    this.committedWrites += group.length;
    if (!this.durable) {
      answer(group);
      return;
    }
    const synced = this.syncWal();
    const previous = this.answered;
    this.syncing++;
    this.answered = (async () => {
      await previous;
      try {
        await synced;
        answer(group);
      } catch (error) {
        // Committed, but not known to be on disk: the client must not take it as acknowledged.
        const failure = new StorageUnavailable(`fsync failed: ${describe(error)}`);
        for (const member of group) member.reject(failure);
      } finally {
        this.syncing--;
      }
      if (this.syncing === 0) this.commit();
    })();
  }

  /** Flushes the WAL file to disk off the event loop. */
  private syncWal(): Promise<void> {
    this.walFd ??= openSync(`${this.path}-wal`, "r");
    return this.flush(this.walFd);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Whether close() has been called: work that can wait for a later run should stop. */
  get isClosing(): boolean {
    return this.closing !== null;
  }

  /**
   * Commits the open group, waits until every group is answered, then closes; at once, with
   * nothing in flight.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    // Answering a group may write again (a claim handed back to the queue because its client
    // left): commit and wait until no group is open and none is syncing.
    for (;;) {
      if (this.busy) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      this.commit();
      if (this.syncing === 0 && this.group === null) break;
      await this.answered;
    }
    this.closed = true;
    if (this.walFd !== null) {
      fsyncSync(this.walFd);
      closeSync(this.walFd);
    }
    this.writer.run("PRAGMA optimize");
    this.reader.close();
    this.writer.close();
  }
}

function migrate(db: Database): void {
  const row = db.query<{ user_version: number }, []>("PRAGMA user_version").get();
  const version = row?.user_version ?? 0;
  if (version > MIGRATIONS.length) {
    throw new Error(
      `the database is at schema version ${version}, newer than this server (${MIGRATIONS.length})`,
    );
  }
  if (version === MIGRATIONS.length) return;
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.run(MIGRATIONS[v] ?? "");
    }
    db.run(`PRAGMA user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

/** Answers each write of a committed group: its afterCommit work, then its promise. */
function answer(group: Member[]): void {
  for (const member of group) {
    for (const f of member.after) {
      try {
        f();
      } catch (error) {
        // A listener's failure must not fail a write that is already on disk.
        console.error("after-commit listener failed:", error);
      }
    }
    member.resolve();
  }
}

function fsyncOffThread(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fsync(fd, (error) => (error ? reject(error) : resolve())),
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
