// Environment variables and command-line flags, turned into one validated Config.

import { statSync } from "node:fs";
import { parseGoDuration } from "./duration.ts";

export type SyncMode = "full" | "normal";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Config {
  hostname: string;
  port: number;
  /** The SQLite file, when no PostgreSQL database is named. */
  storage: string;
  /** A PostgreSQL URL (postgres://…): the engine for several instances; null for SQLite. */
  database: string | null;
  /** Connections each instance keeps to PostgreSQL. */
  poolSize: number;
  tokens: string[];
  corsOrigins: "*" | string[];
  maxBody: number;
  sync: SyncMode;
  maxLogs: number;
  eventRetentionMs: number;
  logLevel: LogLevel;
  metricsPublic: boolean;
  /** Types with series of their own in /metrics; the rest share `errand_type="_other"`. */
  metricsMaxTypes: number;
  maxStreams: number;
  /** How often TTL expiry is checked. */
  sweepIntervalMs: number;
  /** How often an idle event stream sends a keep-alive comment. */
  keepAliveMs: number;
  /** Bytes an event stream may hold for a client that is not reading before it is cut off. */
  sseMaxBufferBytes: number;
}

export class ConfigError extends Error {}

interface Setting {
  env: string;
  flag: string;
  fallback: string;
}

export const SETTINGS = {
  port: { env: "ERRANDS_PORT", flag: "port", fallback: ":5555" },
  storage: { env: "ERRANDS_STORAGE", flag: "storage", fallback: "./data/" },
  database: { env: "ERRANDS_DATABASE", flag: "database", fallback: "" },
  poolSize: { env: "ERRANDS_POOL_SIZE", flag: "pool-size", fallback: "10" },
  token: { env: "ERRANDS_TOKEN", flag: "token", fallback: "" },
  corsOrigins: { env: "ERRANDS_CORS_ORIGINS", flag: "cors-origins", fallback: "*" },
  maxBody: { env: "ERRANDS_MAX_BODY", flag: "max-body", fallback: "1MiB" },
  sync: { env: "ERRANDS_SYNC", flag: "sync", fallback: "full" },
  maxLogs: { env: "ERRANDS_MAX_LOGS", flag: "max-logs", fallback: "1000" },
  eventRetention: { env: "ERRANDS_EVENT_RETENTION", flag: "event-retention", fallback: "24h" },
  logLevel: { env: "ERRANDS_LOG_LEVEL", flag: "log-level", fallback: "info" },
  metricsPublic: { env: "ERRANDS_METRICS_PUBLIC", flag: "metrics-public", fallback: "false" },
  metricsMaxTypes: {
    env: "ERRANDS_METRICS_MAX_TYPES",
    flag: "metrics-max-types",
    fallback: "1000",
  },
  maxStreams: { env: "ERRANDS_MAX_STREAMS", flag: "max-streams", fallback: "1000" },
} satisfies Record<string, Setting>;

type SettingName = keyof typeof SETTINGS;

/** Splits `--name value` and `--name=value` flags from the other arguments. */
export function parseFlags(args: string[]): { flags: Map<string, string>; rest: string[] } {
  const flags = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (!arg.startsWith("--")) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    if (eq > 0) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    } else {
      const value = args[i + 1];
      if (value === undefined || value.startsWith("--")) {
        throw new ConfigError(`flag ${arg} needs a value`);
      }
      flags.set(arg.slice(2), value);
      i++;
    }
  }
  return { flags, rest };
}

export function loadConfig(
  env: Record<string, string | undefined>,
  flags: Map<string, string> = new Map(),
): Config {
  const known = new Set(Object.values(SETTINGS).map((s) => s.flag));
  for (const name of flags.keys()) {
    if (!known.has(name)) throw new ConfigError(`unknown flag --${name}`);
  }
  const raw = (name: SettingName): string => {
    const s = SETTINGS[name];
    return flags.get(s.flag) ?? env[s.env] ?? s.fallback;
  };
  const fail = (name: SettingName, why: string): never => {
    const s = SETTINGS[name];
    throw new ConfigError(`${s.env} (--${s.flag}) ${why}: ${JSON.stringify(raw(name))}`);
  };

  const listen = parseListen(raw("port"));
  if (!listen) fail("port", "must be :PORT, HOST:PORT or PORT with a port from 1 to 65535");

  const storage = raw("storage");
  if (storage.trim() === "") fail("storage", "must name a directory or a file");

  const database = raw("database").trim();
  if (database !== "" && !/^postgres(ql)?:\/\/./.test(database)) {
    fail("database", "must be a postgres:// URL");
  }

  const poolSize = wholeNumber(raw("poolSize"));
  if (poolSize === null || poolSize < 1 || poolSize > 1000) {
    fail("poolSize", "must be a whole number from 1 to 1000");
  }

  const maxBody = parseBytes(raw("maxBody"));
  if (maxBody === null || maxBody < 1024) fail("maxBody", "must be a size of at least 1KiB");

  const sync = raw("sync").toLowerCase();
  if (sync !== "full" && sync !== "normal") fail("sync", "must be full or normal");

  const maxLogs = wholeNumber(raw("maxLogs"));
  if (maxLogs === null || maxLogs < 1) fail("maxLogs", "must be a whole number ≥ 1");

  const retention = parseGoDuration(raw("eventRetention"));
  if (retention === null || retention < 1000)
    fail("eventRetention", "must be a duration of at least 1s, such as 24h");

  const logLevel = raw("logLevel").toLowerCase();
  if (!["debug", "info", "warn", "error"].includes(logLevel))
    fail("logLevel", "must be debug, info, warn or error");

  const metricsPublic = parseBool(raw("metricsPublic"));
  if (metricsPublic === null) fail("metricsPublic", "must be true or false");

  const metricsMaxTypes = wholeNumber(raw("metricsMaxTypes"));
  if (metricsMaxTypes === null) fail("metricsMaxTypes", "must be a whole number ≥ 0");

  const maxStreams = wholeNumber(raw("maxStreams"));
  if (maxStreams === null || maxStreams < 1) fail("maxStreams", "must be a whole number ≥ 1");

  const origins = raw("corsOrigins")
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");

  return {
    hostname: listen?.hostname ?? "0.0.0.0",
    port: listen?.port ?? 5555,
    storage: resolveStorage(storage),
    database: database === "" ? null : database,
    poolSize: poolSize ?? 10,
    tokens: raw("token")
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t !== ""),
    corsOrigins: origins.length === 0 || origins.includes("*") ? "*" : origins,
    maxBody: maxBody ?? 0,
    sync: sync as SyncMode,
    maxLogs: maxLogs ?? 1000,
    eventRetentionMs: retention ?? 86_400_000,
    logLevel: logLevel as LogLevel,
    metricsPublic: metricsPublic ?? false,
    metricsMaxTypes: metricsMaxTypes ?? 1000,
    maxStreams: maxStreams ?? 1000,
    sweepIntervalMs: 1000,
    keepAliveMs: 15_000,
    sseMaxBufferBytes: 1024 * 1024,
  };
}

/** Go's listen address forms: ":5555", "127.0.0.1:5555", "[::1]:5555" or "5555". */
export function parseListen(text: string): { hostname: string; port: number } | null {
  const match = /^(?:(\[[^\]]+\]|[^:]*):)?(\d{1,5})$/.exec(text.trim());
  if (!match) return null;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return null;
  const host = match[1] ?? "";
  return { hostname: host === "" ? "0.0.0.0" : host.replace(/^\[|\]$/g, ""), port };
}

/** A directory (ends in "/" or exists as one) holds errands.sqlite; anything else is the file. */
export function resolveStorage(path: string): string {
  if (path.endsWith("/")) return `${path}errands.sqlite`;
  try {
    if (statSync(path).isDirectory()) return `${path}/errands.sqlite`;
  } catch {
    // Not there yet: a file path.
  }
  return path;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

function parseBytes(text: string): number | null {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  if (!match) return null;
  const unit = BYTE_UNITS[(match[2] ?? "").toLowerCase()];
  return unit === undefined ? null : Number(match[1]) * unit;
}

function wholeNumber(text: string): number | null {
  return /^\d{1,9}$/.test(text.trim()) ? Number(text) : null;
}

/** Go's strconv.ParseBool. */
export function parseBool(text: string): boolean | null {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return null;
}
