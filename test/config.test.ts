// Configuration from the environment and flags: listen address, storage path, and bad values.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig, parseFlags, parseListen, resolveStorage } from "../src/config.ts";
import { removeTempDirs, tempDir } from "./harness.ts";

afterAll(removeTempDirs);

const ROOT = join(import.meta.dir, "..");

describe("ERRANDS_PORT", () => {
  test.each([
    [":5555", "0.0.0.0", 5555],
    ["127.0.0.1:5555", "127.0.0.1", 5555],
    ["5555", "0.0.0.0", 5555],
    ["localhost:8080", "localhost", 8080],
    ["[::1]:5555", "::1", 5555],
    [":1", "0.0.0.0", 1],
    [":65535", "0.0.0.0", 65535],
  ])("%p listens on %p port %p", (text, hostname, port) => {
    expect(parseListen(text)).toEqual({ hostname, port });
    const config = loadConfig({ ERRANDS_PORT: text });
    expect(config.hostname).toBe(hostname);
    expect(config.port).toBe(port);
  });

  test("the default is :5555 on every interface", () => {
    const config = loadConfig({});
    expect(config.hostname).toBe("0.0.0.0");
    expect(config.port).toBe(5555);
  });

  test.each([
    "",
    "abc",
    ":",
    ":0",
    "0",
    "65536",
    ":99999",
    "127.0.0.1:",
    "5555:",
    "1.2.3.4:55a",
    "-1",
  ])("%p is refused with a ConfigError naming ERRANDS_PORT", (text) => {
    expect(() => loadConfig({ ERRANDS_PORT: text })).toThrow(ConfigError);
    expect(() => loadConfig({ ERRANDS_PORT: text })).toThrow(/ERRANDS_PORT/);
  });

  test("a --port flag wins over the environment", () => {
    const { flags } = parseFlags(["--port", "127.0.0.1:7000"]);
    expect(loadConfig({ ERRANDS_PORT: ":5555" }, flags).port).toBe(7000);
    expect(loadConfig({}, parseFlags(["--port=7001"]).flags).port).toBe(7001);
  });
});

describe("ERRANDS_STORAGE", () => {
  test("a path ending in / is a directory holding errands.sqlite", () => {
    expect(resolveStorage("/var/lib/errands/")).toBe("/var/lib/errands/errands.sqlite");
    expect(loadConfig({}).storage).toBe("./data/errands.sqlite");
  });

  test("an existing directory named without a slash holds errands.sqlite", () => {
    const dir = join(tempDir(), "state");
    mkdirSync(dir);
    expect(resolveStorage(dir)).toBe(join(dir, "errands.sqlite"));
    expect(loadConfig({ ERRANDS_STORAGE: dir }).storage).toBe(join(dir, "errands.sqlite"));
  });

  test("any other path is the database file itself", () => {
    const dir = tempDir();
    expect(resolveStorage(join(dir, "queue.db"))).toBe(join(dir, "queue.db"));
    expect(resolveStorage(join(dir, "not-yet"))).toBe(join(dir, "not-yet"));
  });

  test("an empty storage path is refused", () => {
    expect(() => loadConfig({ ERRANDS_STORAGE: "" })).toThrow(ConfigError);
  });
});

describe("other settings", () => {
  test("ERRANDS_MAX_LOGS must be a whole number of at least 1", () => {
    expect(loadConfig({}).maxLogs).toBe(1000);
    expect(loadConfig({ ERRANDS_MAX_LOGS: "3" }).maxLogs).toBe(3);
    for (const bad of ["0", "-1", "1.5", "many"]) {
      expect(() => loadConfig({ ERRANDS_MAX_LOGS: bad })).toThrow(ConfigError);
    }
  });

  test("defaults: 1 MiB bodies, full sync, 24 h of events, info logs, metrics behind the token", () => {
    const config = loadConfig({});
    expect(config.maxBody).toBe(1024 * 1024);
    expect(config.sync).toBe("full");
    expect(config.eventRetentionMs).toBe(86_400_000);
    expect(config.logLevel).toBe("info");
    expect(config.metricsPublic).toBe(false);
    expect(config.corsOrigins).toBe("*");
    expect(config.tokens).toEqual([]);
    // SPEC: keep-alive every 15 s; TTL and heartbeats checked at least every 5 s.
    expect(config.keepAliveMs).toBe(15_000);
    expect(config.sweepIntervalMs).toBeLessThanOrEqual(5000);
  });

  test("each setting's values are read, and a bad one is refused", () => {
    const read = loadConfig({
      ERRANDS_MAX_BODY: "2MiB",
      ERRANDS_SYNC: "NORMAL",
      ERRANDS_EVENT_RETENTION: "1h30m",
      ERRANDS_LOG_LEVEL: "warn",
      ERRANDS_METRICS_PUBLIC: "true",
      ERRANDS_CORS_ORIGINS: "https://a.example, https://b.example",
      ERRANDS_TOKEN: "one,two",
    });
    expect(read.maxBody).toBe(2 * 1024 * 1024);
    expect(read.sync).toBe("normal");
    expect(read.eventRetentionMs).toBe(5_400_000);
    expect(read.logLevel).toBe("warn");
    expect(read.metricsPublic).toBe(true);
    expect(read.corsOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(read.tokens).toEqual(["one", "two"]);
    for (const [name, bad] of [
      ["ERRANDS_MAX_BODY", "lots"],
      ["ERRANDS_MAX_BODY", "100"],
      ["ERRANDS_SYNC", "sometimes"],
      ["ERRANDS_EVENT_RETENTION", "1 day"],
      ["ERRANDS_EVENT_RETENTION", "10ms"],
      ["ERRANDS_LOG_LEVEL", "loud"],
      ["ERRANDS_METRICS_PUBLIC", "yes"],
      ["ERRANDS_MAX_STREAMS", "0"],
    ] as const) {
      expect(() => loadConfig({ [name]: bad })).toThrow(ConfigError);
    }
  });

  test("ERRANDS_METRICS_MAX_TYPES is a whole number, 1000 by default, 0 allowed; a flag wins", () => {
    expect(loadConfig({}).metricsMaxTypes).toBe(1000);
    expect(loadConfig({ ERRANDS_METRICS_MAX_TYPES: "50" }).metricsMaxTypes).toBe(50);
    expect(loadConfig({ ERRANDS_METRICS_MAX_TYPES: "0" }).metricsMaxTypes).toBe(0);
    const flags = parseFlags(["--metrics-max-types", "7"]).flags;
    expect(loadConfig({ ERRANDS_METRICS_MAX_TYPES: "50" }, flags).metricsMaxTypes).toBe(7);
    for (const bad of ["-1", "1.5", "many", ""]) {
      expect(() => loadConfig({ ERRANDS_METRICS_MAX_TYPES: bad })).toThrow(
        /ERRANDS_METRICS_MAX_TYPES \(--metrics-max-types\)/,
      );
    }
  });

  test("an unknown flag is refused", () => {
    expect(() => loadConfig({}, parseFlags(["--colour", "red"]).flags)).toThrow(ConfigError);
  });
});

describe("start-up", () => {
  test("a bad ERRANDS_PORT stops the server with one line on stderr and exit code 2", async () => {
    const storage = `${tempDir()}/`;
    const child = Bun.spawn([process.execPath, "src/main.ts"], {
      cwd: ROOT,
      env: { ...process.env, ERRANDS_PORT: "not-a-port", ERRANDS_STORAGE: storage },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
    expect(code).toBe(2);
    const lines = stderr.split("\n").filter((line) => line !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("ERRANDS_PORT");
    expect(lines[0]).toContain("not-a-port");
  }, 30_000);
});
