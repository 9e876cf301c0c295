// The executable: reads the configuration, opens the store, serves; and the sub-commands.

import pkg from "../package.json" with { type: "json" };
import { createApp } from "./app.ts";
import { systemClock } from "./clock.ts";
import { ConfigError, loadConfig, parseFlags } from "./config.ts";
import { createLogger } from "./ops/log.ts";
import { Store } from "./store/db.ts";

export const VERSION: string = pkg.version;

function serve(args: string[]): void {
  let config: ReturnType<typeof loadConfig>;
  try {
    const { flags, rest } = parseFlags(args);
    if (rest.length > 0) throw new ConfigError(`unexpected argument ${rest[0]}`);
    config = loadConfig(process.env, flags);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`errands-server: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  let store: Store;
  try {
    store = new Store(config.storage, { sync: config.sync });
  } catch (error) {
    process.stderr.write(
      `errands-server: cannot open storage ${config.storage}: ${(error as Error).message}\n`,
    );
    process.exit(2);
  }
  const { app, sweep } = createApp({ store, clock: systemClock, config, logger });
  const server = app.listen({ hostname: config.hostname, port: config.port });
  logger.info("started", {
    version: VERSION,
    hostname: config.hostname,
    port: server.server?.port,
    storage: config.storage,
    sync: config.sync,
  });

  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweep()
      .catch((error) => logger.error("sweep failed", { error: String(error) }))
      .finally(() => {
        sweeping = false;
      });
  }, config.sweepIntervalMs);

  const stop = async (signal: string) => {
    logger.info("stopping", { signal });
    clearInterval(sweeper);
    await app.stop();
    store.close();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

const [command = "serve", ...args] = process.argv.slice(2);
switch (command) {
  case "serve":
    serve(args);
    break;
  case "version":
    console.log(VERSION);
    break;
  default:
    if (command.startsWith("--")) {
      serve([command, ...args]);
      break;
    }
    process.stderr.write(`errands-server: unknown command ${command}\n`);
    process.exit(2);
}
