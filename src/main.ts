// The executable: `serve` (the default) reads the configuration, opens the store and listens;
// `backup <file>`, `version` and `help` are the other sub-commands.

import { createApp } from "./app.ts";
import { systemClock } from "./clock.ts";
import { type Config, ConfigError, loadConfig, parseFlags, SETTINGS } from "./config.ts";
import { DomainError } from "./errors.ts";
import { BackupError, backup } from "./ops/backup.ts";
import { createLogger } from "./ops/log.ts";
import type { Driver } from "./store/driver.ts";
import { PostgresDriver } from "./store/postgres/driver.ts";
import { SqliteDriver } from "./store/sqlite/driver.ts";
import { VERSION } from "./version.ts";

/** When a shutdown stops waiting for what is still open, and how long it then gives the
 *  database to close: out within 10 s in all. */
const SHUTDOWN_LIMIT_MS = 9_000;
const FORCED_CLOSE_MS = 500;

/** Exits with one line on stderr: 2 for a usage or configuration mistake, 1 for a failure. */
function die(message: string, code: 1 | 2): never {
  process.stderr.write(`errands-server: ${message}\n`);
  process.exit(code);
}

/** The validated configuration and the arguments that are not flags. */
function configure(args: string[]): { config: Config; rest: string[] } {
  try {
    const { flags, rest } = parseFlags(args);
    return { config: loadConfig(process.env, flags), rest };
  } catch (error) {
    if (error instanceof ConfigError) die(error.message, 2);
    throw error;
  }
}

/** The engine the configuration names: PostgreSQL with ERRANDS_DATABASE, else SQLite. */
async function openDriver(config: Config): Promise<Driver> {
  if (config.database === null) {
    try {
      return new SqliteDriver(config.storage, { sync: config.sync });
    } catch (error) {
      die(`cannot open storage ${config.storage}: ${(error as Error).message}`, 2);
    }
  }
  const driver = new PostgresDriver(config.database, { poolSize: config.poolSize });
  try {
    await driver.ready;
  } catch (error) {
    die(`cannot open database ${redact(config.database)}: ${(error as Error).message}`, 1);
  }
  return driver;
}

/** A failure for the log: a 503's detail says what failed ("Failed to connect"), its message
 *  alone does not. */
function describeFailure(error: unknown): string {
  return error instanceof DomainError ? `${error.message}: ${error.detail}` : String(error);
}

/** A database URL without its password, for the log. */
function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@]*@/, "$1:***@");
}

async function serve(args: string[]): Promise<void> {
  const { config, rest } = configure(args);
  if (rest.length > 0) die(`unexpected argument ${rest[0]}`, 2);
  const logger = createLogger(config.logLevel);
  const store = await openDriver(config);
  const { app, sweep, release, history } = createApp({
    driver: store,
    clock: systemClock,
    config,
    logger,
  });
  try {
    app.listen({
      hostname: config.hostname,
      port: config.port,
      // A backstop well above ERRANDS_MAX_BODY: bodies up to it get the 413 envelope from the app
      // (Bun's own 413 has no body).
      maxRequestBodySize: config.maxBody * 2 + 65_536,
      // A long-poll claim holds a silent request for up to 60 s.
      idleTimeout: 120,
      // Two servers on one port would share its connections but not their state.
      reusePort: false,
      development: false,
    });
  } catch (error) {
    void store.close();
    die(`cannot listen on ${config.hostname}:${config.port}: ${(error as Error).message}`, 1);
  }
  logger.info("started", {
    version: VERSION,
    hostname: config.hostname,
    port: app.server?.port,
    ...(config.database === null
      ? { storage: config.storage, sync: config.sync }
      : { database: redact(config.database), poolSize: config.poolSize }),
    auth: config.tokens.length > 0,
  });

  /** The sweep running now, if one is. */
  let sweeping: Promise<void> | null = null;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = sweep()
      .catch((error) => logger.error("sweep failed", { error: describeFailure(error) }))
      .finally(() => {
        sweeping = null;
      });
  }, config.sweepIntervalMs);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal });
    const started = performance.now();
    const finish = async (forced: boolean) => {
      try {
        // Commits the open group and waits until it is on disk. At the limit it gets a short
        // while more: every acknowledged write is on disk already, and an exit loses none.
        const closed = store.close();
        await (forced ? Promise.race([closed, Bun.sleep(FORCED_CLOSE_MS)]) : closed);
      } catch (error) {
        logger.error("closing the database failed", { error: String(error) });
      }
      logger.info("stopped", { ms: Math.round(performance.now() - started), forced });
      process.exit(0);
    };
    // Whatever is still open after the limit, acknowledged writes are on disk: exit anyway.
    setTimeout(() => {
      logger.warn("requests still open at the shutdown limit; closing anyway");
      void finish(true);
    }, SHUTDOWN_LIMIT_MS).unref();
    clearInterval(sweeper);
    // Stop accepting at once; the promise settles when the requests in flight are answered.
    const drained = app.stop();
    // Streams and long polls would hold their requests open: end them.
    release();
    try {
      await drained;
    } catch (error) {
      logger.error("stopping the listener failed", { error: String(error) });
    }
    // Let writes of the last requests commit before closing.
    await new Promise((resolve) => setImmediate(resolve));
    // The history counted since the last sweep, so a clean stop loses none of it.
    await sweeping;
    try {
      await history.flush();
    } catch (error) {
      logger.error("writing the history failed", { error: describeFailure(error) });
    }
    await finish(false);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("uncaughtException", (error) => {
    logger.error("uncaught exception", { error: error.stack ?? String(error) });
    process.exit(1);
  });
}

function runBackup(args: string[]): void {
  const { config, rest } = configure(args);
  const [target, extra] = rest;
  if (config.database !== null) {
    die(
      "backup copies the SQLite file; with ERRANDS_DATABASE use PostgreSQL's own tools: pg_dump (a consistent copy while the server runs) or continuous archiving",
      2,
    );
  }
  if (target === undefined || extra !== undefined) {
    die("usage: errands-server backup <new file> [--storage PATH]", 2);
  }
  try {
    const copy = backup(config.storage, target);
    process.stdout.write(
      `backup of ${config.storage} written to ${copy.path} (${copy.bytes} bytes)\n`,
    );
  } catch (error) {
    if (error instanceof BackupError) die(error.message, 1);
    throw error;
  }
}

function help(): string {
  const settings = Object.values(SETTINGS)
    .map((s) => `  --${s.flag.padEnd(16)} ${s.env.padEnd(24)} default ${s.fallback || "(none)"}`)
    .join("\n");
  return `errands-server ${VERSION}: a job queue spoken over HTTP.

Usage:
  errands-server [serve] [flags]        serve the API (the default)
  errands-server backup <file> [flags]  write a consistent copy of the database, also while it
                                        is being served, to a new file
  errands-server version                print the version
  errands-server help                   print this text

Settings: each flag, or its environment variable (a flag wins):
${settings}

Swagger UI at /swagger, the OpenAPI document at /swagger/json, health at /health, Prometheus
metrics at /metrics.
`;
}

async function main(): Promise<void> {
  const [command = "serve", ...args] = process.argv.slice(2);
  switch (command) {
    case "serve":
      await serve(args);
      break;
    case "backup":
      runBackup(args);
      break;
    case "version":
    case "--version":
      process.stdout.write(`${VERSION}\n`);
      break;
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(help());
      break;
    default:
      if (command.startsWith("--")) {
        await serve([command, ...args]);
        break;
      }
      die(`unknown command ${command}; try errands-server help`, 2);
  }
}

void main();
