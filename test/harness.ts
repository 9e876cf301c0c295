// Builds apps on real SQLite files in temp dirs (or, with ERRANDS_TEST_DATABASE set, on a
// real PostgreSQL, a schema of their own each), with a clock the test moves, and calls them
// over app.handle exactly as a client would.

import type { Statement } from "bun:sqlite";
import { afterEach } from "bun:test";
import { mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SQL } from "bun";
import { createApp } from "../src/app.ts";
import { ManualClock } from "../src/clock.ts";
import { type Config, loadConfig } from "../src/config.ts";
import type { Logger } from "../src/ops/log.ts";
import { PgTx } from "../src/store/postgres/access.ts";
import { PostgresDriver } from "../src/store/postgres/driver.ts";
import type { ErrandRecord } from "../src/store/records.ts";
import { SqliteDriver } from "../src/store/sqlite/driver.ts";
import { eventually } from "./sse.ts";

/** The whole suite on PostgreSQL instead of SQLite: ERRANDS_TEST_DATABASE=postgres://… */
export const TEST_DATABASE = process.env.ERRANDS_TEST_DATABASE || null;
/** Tests of what only the SQLite engine has (its files, group commit, fsync) skip on it. */
export const onPostgres = TEST_DATABASE !== null;

const dirs: string[] = [];
const schemas = new Set<string>();
/** Every app made and not yet closed: each holds database connections until it is. */
const open = new Set<TestApp>();

// What a test left open is closed after it, and what a file's beforeAll opened after the
// file (a PostgreSQL server has only so many connections): test/setup.ts, preloaded for every
// file, calls these. Closing twice is harmless.
let inTest = false;
const madeInTest = new Set<TestApp>();

export function testStarted(): void {
  inTest = true;
}

export async function testEnded(): Promise<void> {
  inTest = false;
  await closeAll([...madeInTest]);
  madeInTest.clear();
}

export async function fileEnded(): Promise<void> {
  await closeAll([...open]);
  // And the temp dirs and PostgreSQL schemas of files that do not remove them themselves.
  await removeTempDirs();
}

async function closeAll(apps: TestApp[]): Promise<void> {
  for (const a of apps) {
    if (!open.has(a)) continue;
    a.release();
    if (a.app.server) await a.app.stop(true);
    await a.close();
  }
}
/** The schema an app on `dir` uses on PostgreSQL: the same dir, the same schema (a restart). */
function schemaFor(dir: string): string {
  const schema = `errands_test_${Bun.hash(dir).toString(36)}`;
  schemas.add(schema);
  return schema;
}

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "errands-test-"));
  dirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  if (TEST_DATABASE === null || schemas.size === 0) return;
  const admin = new Bun.SQL(TEST_DATABASE, { max: 1 });
  try {
    for (const schema of [...schemas]) {
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      schemas.delete(schema);
    }
  } finally {
    await admin.close();
  }
}

/** The file a descriptor of this process is open on, as Linux names it in /proc. */
export function fileOf(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field in tests
  body: any;
  headers: Headers;
}

export interface TestApp extends ReturnType<typeof createApp> {
  /** The SQLite engine; on PostgreSQL runs the PostgreSQL one, and SQLite-only tests skip. */
  store: SqliteDriver;
  clock: ManualClock;
  config: Config;
  dir: string;
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Answer>;
  close(): Promise<void>;
  /**
   * Transactions committed so far: the SQLite engine's commits (one may hold the writes of
   * several requests), or PostgreSQL's, where every write is a transaction of its own.
   */
  commits(): number;
  /**
   * Settles once this app's listeners have heard every event it has committed: at once on
   * SQLite; on PostgreSQL events reach them through the log a few milliseconds after the commit.
   */
  eventsHeard(): Promise<void>;
}

export function testConfig(dir: string, env: Record<string, string> = {}): Config {
  return loadConfig({ ERRANDS_STORAGE: `${dir}/`, ...env });
}

export function makeApp(
  options: {
    dir?: string;
    clock?: ManualClock;
    env?: Record<string, string>;
    /** Settings no environment variable reaches (keep-alive period, stream buffer). */
    tune?: Partial<Config>;
    /** Stands in for the fsync of each commit (to hold one back). */
    flush?: (fd: number) => Promise<void>;
    /** The operator's log (silent unless given). */
    logger?: Logger;
  } = {},
): TestApp {
  const dir = options.dir ?? tempDir();
  const config = { ...testConfig(dir, options.env), ...options.tune };
  const clock = options.clock ?? new ManualClock();
  let commits: () => number;
  let store: SqliteDriver;
  if (TEST_DATABASE === null) {
    const sqlite = new SqliteDriver(config.storage, { sync: config.sync, flush: options.flush });
    commits = () => sqlite.commits;
    store = sqlite;
  } else {
    const postgres = new PostgresDriver(TEST_DATABASE, { schema: schemaFor(dir), poolSize: 4 });
    commits = countCommits(postgres);
    store = postgres as unknown as SqliteDriver;
  }
  const built = createApp({ driver: store, clock, config, logger: options.logger });
  // Events committed by this app (observers hear them at the commit) and heard by listeners.
  let committedEvents = 0;
  let heardEvents = 0;
  built.bus.observe(() => committedEvents++);
  built.bus.subscribe(() => heardEvents++);
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    }
    const res = await built.app.handle(new Request(`http://localhost${path}`, init));
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: keep the text.
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const made: TestApp = {
    ...built,
    store,
    clock,
    config,
    dir,
    call,
    close: () => {
      open.delete(made);
      return store.close();
    },
    commits,
    eventsHeard: () => eventually(() => heardEvents >= committedEvents),
  };
  open.add(made);
  if (inTest) madeInTest.add(made);
  return made;
}

/**
 * Stands in for the SQLite engine's fsync (makeApp's `flush`): while held, each fsync waits
 * until the test lets it finish, so a commit is written but not yet on disk.
 */
export function fsyncGate(holding = false) {
  let hold = holding;
  const held: Array<() => void> = [];
  return {
    flush: () => (hold ? new Promise<void>((resolve) => held.push(resolve)) : Promise.resolve()),
    /** Holds every fsync from now on. */
    hold: () => {
      hold = true;
    },
    /** Lets the fsyncs from now on through; those held stay held. */
    open: () => {
      hold = false;
    },
    /** Lets the n-th fsync held (counting from 0) finish. */
    release: (n: number) => held[n]?.(),
    /** Lets the fsyncs from now on through, and every one held finish. */
    releaseAll: () => {
      hold = false;
      for (const done of held.splice(0)) done();
    },
    /** How many have been held (and not released by releaseAll). */
    get count() {
      return held.length;
    },
  };
}

/** Counts the transactions a PostgreSQL driver commits: each write (or stage) is one. */
function countCommits(driver: PostgresDriver): () => number {
  let commits = 0;
  const stage = driver.stage.bind(driver);
  driver.stage = async (fn) => {
    const staged = await stage(fn);
    commits++;
    return staged;
  };
  return () => commits;
}

/** Every errand stored, in id order, as the engine's committed reads answer them. */
export async function storedErrands(a: TestApp): Promise<ErrandRecord[]> {
  const all: ErrandRecord[] = [];
  for (let after = ""; ; ) {
    const page = await a.store.reads.errandPage({}, after, 1000, "oldest");
    all.push(...page);
    if (page.length < 1000) return all;
    after = page.at(-1)?.id ?? after;
  }
}

/**
 * Runs SQL on the app's own PostgreSQL schema, on a connection of its own: for what only the
 * database shows (rows left behind, a trigger a test plants). PostgreSQL runs only.
 */
export async function onSchema(a: TestApp, query: string): Promise<Record<string, unknown>[]> {
  const sql = await schemaConnection(a);
  try {
    return [...(await sql.unsafe(query))];
  } finally {
    await sql.close();
  }
}

/** A connection of its own to the app's PostgreSQL schema, once migrated; the caller closes it. */
export async function schemaConnection(a: TestApp): Promise<SQL> {
  if (TEST_DATABASE === null) throw new Error("a schema needs ERRANDS_TEST_DATABASE");
  await (a.store as unknown as PostgresDriver).ready;
  return new Bun.SQL(TEST_DATABASE, { max: 1, connection: { search_path: schemaFor(a.dir) } });
}

/** The plan SQLite runs a statement by, as last bound: one line per step. */
export function sqlitePlanOf(a: TestApp, statement: unknown): string[] {
  return a.store.writer
    .query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${(statement as Statement).toString()}`)
    .all()
    .map((row) => row.detail);
}

/**
 * A PostgreSQL transaction's methods on `sql` that EXPLAIN each statement as it is about to
 * run, for query-plan tests; `plansOf(run)` answers the plans of the statements `run` made.
 */
export function explainingTx(sql: SQL): {
  tx: PgTx;
  plansOf: (run: () => Promise<unknown>) => Promise<string>;
} {
  let plans: string[] = [];
  const explaining = async (strings: TemplateStringsArray, ...values: unknown[]) => {
    const text = strings.reduce((all, part, i) => `${all}$${i}${part}`);
    const plan = await sql.unsafe(`EXPLAIN ${text}`, values);
    plans.push(plan.map((row: Record<string, string>) => row["QUERY PLAN"]).join("\n"));
    return sql(strings, ...values);
  };
  const plansOf = async (run: () => Promise<unknown>) => {
    plans = [];
    await run();
    return plans.join("\n");
  };
  return { tx: new PgTx(explaining as unknown as SQL, []), plansOf };
}

/**
 * Runs `check` with a PostgreSQL transaction on the app's schema that explains each statement
 * as it is about to run it (explainingTx). Table scans are priced out: so small a table is
 * cheaper to scan, and a plan that still scans the table has no index that serves its
 * statement. PostgreSQL runs only.
 */
export async function withExplainedTx(
  a: TestApp,
  check: (tx: PgTx, plansOf: (run: () => Promise<unknown>) => Promise<string>) => Promise<void>,
): Promise<void> {
  const sql = await schemaConnection(a);
  try {
    await sql`SET enable_seqscan = off`;
    const { tx, plansOf } = explainingTx(sql);
    await check(tx, plansOf);
  } finally {
    await sql.close();
  }
}

/**
 * The rows a query answers on the app's own database (SQLite's read connection, or its
 * PostgreSQL schema): for checks of what the store keeps that no read of the driver shows.
 * The SQL must suit both engines.
 */
export async function storeRows(a: TestApp, query: string): Promise<Record<string, unknown>[]> {
  if (TEST_DATABASE === null) return a.store.reader.query(query).all() as Record<string, unknown>[];
  return onSchema(a, query);
}

/**
 * For a test file: an `app()` that builds apps which are released, stopped and closed, and
 * their temp dirs removed, after each test.
 */
export function appsPerTest(): (options?: Parameters<typeof makeApp>[0]) => TestApp {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) {
      a.release();
      if (a.app.server) await a.app.stop(true);
      await a.close();
    }
    await removeTempDirs();
  });
  return (options = {}) => {
    const a = makeApp(options);
    apps.push(a);
    return a;
  };
}

/** Runs a command to its end: its exit code and everything it printed. */
export async function runCommand(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(cmd, { ...options, stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code, stdout, stderr };
}
