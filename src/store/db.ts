// Opens the SQLite database, migrates it, and runs writes under group commit.
//
// Writes of requests that arrive together share one transaction and so one fsync: each write
// runs at once inside a savepoint of the open group (a failure rolls back only its own changes),
// and its promise settles only after the COMMIT that holds it. Reads go through a second,
// read-only connection, so they only ever see committed data.

import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { SyncMode } from "../config.ts";
import { StorageUnavailable } from "../errors.ts";
import m0001 from "./migrations/0001_errands.sql" with { type: "text" };
import m0002 from "./migrations/0002_pipelines.sql" with { type: "text" };
import m0003 from "./migrations/0003_queue_depth.sql" with { type: "text" };
import m0004 from "./migrations/0004_worker_safety.sql" with { type: "text" };

/** Numbered migrations; index i holds version i + 1. */
const MIGRATIONS: string[] = [m0001, m0002, m0003, m0004];

export interface Tx {
  /** Runs fn after the commit that holds this write, never if it is rolled back. */
  afterCommit(fn: () => void): void;
}

interface Member {
  resolve: () => void;
  reject: (error: unknown) => void;
  after: Array<() => void>;
}

export class Store {
  readonly writer: Database;
  readonly reader: Database;
  private group: Member[] | null = null;
  private closed = false;
  /** Commits made so far, and the writes they held: the group commit's effect, for metrics. */
  commits = 0;
  /** The transaction statements, prepared once: they run for every write. */
  private readonly tx: Record<
    "begin" | "savepoint" | "release" | "rollbackTo" | "commit",
    Statement
  >;
  committedWrites = 0;

  constructor(
    readonly path: string,
    options: { sync?: SyncMode } = {},
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.writer = new Database(path, { create: true, strict: true });
    this.writer.run("PRAGMA journal_mode = WAL");
    this.writer.run(`PRAGMA synchronous = ${options.sync === "normal" ? "NORMAL" : "FULL"}`);
    this.writer.run("PRAGMA busy_timeout = 5000");
    // Statement journals (savepoints, triggers) in memory, not in temp files: a write with a
    // trigger cost three times as much with them on disk.
    this.writer.run("PRAGMA temp_store = MEMORY");
    this.writer.run("PRAGMA cache_size = -32000");
    migrate(this.writer);
    this.reader = new Database(path, { readonly: true, strict: true });
    this.reader.run("PRAGMA busy_timeout = 5000");
    this.reader.run("PRAGMA temp_store = MEMORY");
    this.reader.run("PRAGMA cache_size = -16000");
    this.tx = {
      begin: this.writer.prepare("BEGIN IMMEDIATE"),
      savepoint: this.writer.prepare("SAVEPOINT request"),
      release: this.writer.prepare("RELEASE request"),
      rollbackTo: this.writer.prepare("ROLLBACK TO request"),
      commit: this.writer.prepare("COMMIT"),
    };
  }

  /** Runs fn in the open group's transaction; resolves with its result once committed. */
  write<T>(fn: (tx: Tx) => T): Promise<T> {
    if (this.closed) return Promise.reject(new StorageUnavailable("the store is closed"));
    try {
      if (this.group === null) {
        this.tx.begin.run();
        this.group = [];
        setImmediate(() => this.commit());
      }
    } catch (error) {
      return Promise.reject(new StorageUnavailable(describe(error)));
    }
    const after: Array<() => void> = [];
    let result: T;
    this.tx.savepoint.run();
    try {
      result = fn({ afterCommit: (f) => after.push(f) });
      this.tx.release.run();
    } catch (error) {
      this.tx.rollbackTo.run();
      this.tx.release.run();
      return Promise.reject(error);
    }
    const group = this.group;
    return new Promise<T>((resolve, reject) => {
      group.push({ resolve: () => resolve(result), reject, after });
    });
  }

  /** Commits the open group now (also run by a timer after each event-loop turn). */
  commit(): void {
    const group = this.group;
    if (group === null) return;
    this.group = null;
    try {
      this.tx.commit.run();
    } catch (error) {
      try {
        this.writer.run("ROLLBACK");
      } catch {
        // Already rolled back by SQLite.
      }
      const failure = new StorageUnavailable(describe(error));
      for (const member of group) member.reject(failure);
      return;
    }
    this.commits++;
    this.committedWrites += group.length;
    for (const member of group) {
      for (const f of member.after) f();
      member.resolve();
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
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

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
