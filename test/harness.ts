// Builds apps on real SQLite files in temp dirs (or, with ERRANDS_TEST_DATABASE set, on a
// real PostgreSQL, a schema of their own each), with a clock the test moves, and calls them
// over app.handle exactly as a client would.

import { afterEach } from "bun:test";
import { mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { ManualClock } from "../src/clock.ts";
import { type Config, loadConfig } from "../src/config.ts";
import type { Logger } from "../src/ops/log.ts";
import { PostgresDriver } from "../src/store/postgres/driver.ts";
import { SqliteDriver } from "../src/store/sqlite/driver.ts";

/** The whole suite on PostgreSQL instead of SQLite: ERRANDS_TEST_DATABASE=postgres://… */
export const TEST_DATABASE = process.env.ERRANDS_TEST_DATABASE || null;
/** Tests of what only the SQLite engine has (its files, group commit, fsync) skip on it. */
export const onPostgres = TEST_DATABASE !== null;

const dirs: string[] = [];
const schemas = new Set<string>();
/** Every app made and not yet closed: each holds database connections until it is. */
const open = new Set<TestApp>();

// Whatever a test left open is closed after it (a PostgreSQL server has only so many
// connections); closing twice is harmless.
afterEach(async () => {
  for (const a of [...open]) {
    a.release();
    if (a.app.server) await a.app.stop(true);
    await a.close();
  }
});

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
  const store =
    TEST_DATABASE === null
      ? new SqliteDriver(config.storage, { sync: config.sync, flush: options.flush })
      : (new PostgresDriver(TEST_DATABASE, {
          schema: schemaFor(dir),
          poolSize: 4,
        }) as unknown as SqliteDriver);
  const built = createApp({ driver: store, clock, config, logger: options.logger });
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
  };
  open.add(made);
  return made;
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
