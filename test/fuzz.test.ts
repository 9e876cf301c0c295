// Seeded fuzzing of every route of the app: random methods, paths, queries, headers and bodies
// must never get a 5xx or make app.handle throw, every 4xx carries the error envelope, and the
// store (errands, pipelines, per-type counts) must stay consistent afterwards.

import { afterAll, expect, test } from "bun:test";
import { EVENT_NAMES } from "../src/events/bus.ts";
import { PIPELINE_STATUSES, STATUSES } from "../src/store/records.ts";
import { dashboard } from "../src/ui/routes.ts";
import {
  type Answer,
  makeApp,
  onPostgres,
  removeTempDirs,
  storeRows,
  type TestApp,
} from "./harness.ts";
import { eventually } from "./sse.ts";

afterAll(removeTempDirs);

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_101);
const CASES = 5000;

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

/** Every route of the app; the test checks that each answered a 2xx at least once. */
const TEMPLATES = [
  ["POST", "/v1/errands"],
  ["POST", "/v1/errands/batch"],
  ["GET", "/v1/errands"],
  ["GET", "/v1/errands/scheduled"],
  ["GET", "/v1/errands/list/:key/:val"],
  ["POST", "/v1/errands/process/:type"],
  ["POST", "/v1/errands/process"],
  ["POST", "/v1/errands/claim/:type"],
  ["POST", "/v1/errands/ack"],
  ["POST", "/v1/errands/update/:key/:val"],
  ["POST", "/v1/errands/retry"],
  ["POST", "/v1/errands/delete"],
  ["POST", "/v1/errands/clear/:duration"],
  ["GET", "/v1/errands/notifications"],
  ["GET", "/v1/errand/:id"],
  ["PUT", "/v1/errand/:id"],
  ["POST", "/v1/errand/:id/log"],
  ["POST", "/v1/errand/:id/heartbeat"],
  ["PUT", "/v1/errand/:id/failed"],
  ["PUT", "/v1/errand/:id/completed"],
  ["POST", "/v1/errand/:id/retry"],
  ["DELETE", "/v1/errand/:id"],
  ["POST", "/v1/pipeline"],
  ["GET", "/v1/pipeline/:pid"],
  ["DELETE", "/v1/pipeline/:pid"],
  ["GET", "/v1/pipelines"],
  ["GET", "/v1/types"],
  ["GET", "/v1/types/history"],
  ["PUT", "/v1/types/:type"],
  ["PUT", "/v1/schedules/:sname"],
  ["GET", "/v1/schedules"],
  ["GET", "/v1/schedules/:sname"],
  ["DELETE", "/v1/schedules/:sname"],
  ["GET", "/health"],
  ["GET", "/metrics"],
  ["GET", "/swagger"],
  ["GET", "/swagger/json"],
  ["GET", "/swagger/assets/:asset"],
  ["GET", "/"],
  ["GET", "/ui/assets/:file"],
] as const;

/** What a worker calls on the errand it holds. */
const WORKER_CALLS = [
  ["PUT", "/v1/errand/:id"],
  ["POST", "/v1/errand/:id/log"],
  ["POST", "/v1/errand/:id/heartbeat"],
  ["PUT", "/v1/errand/:id/failed"],
  ["PUT", "/v1/errand/:id/completed"],
] as const;

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
const TYPES = ["a", "b", "c"];
const FIELDS = [
  "name",
  "type",
  "options",
  "data",
  "ttl",
  "retries",
  "priority",
  "deleteOnCompleted",
  "progress",
  "severity",
  "message",
  "reason",
  "results",
  "status",
  "delete",
  "id",
  "attempts",
  "logs",
  "attempt",
  "heartbeat",
  "runAt",
  "delay",
  "backoff",
  "errands",
  "dependencies",
  "target",
  "dependsOn",
  "paused",
  "concurrency",
  "cron",
  "every",
  "timezone",
  "errand",
  "overlap",
  "__proto__",
  "constructor",
  "",
];
const STRINGS = [
  "",
  "a",
  "INFO",
  "WARNING",
  "ERROR",
  "inactive",
  "active",
  "failed",
  "completed",
  "blocked",
  "\u0000",
  "\ud800",
  "💥",
  "'; DROP TABLE errands; --",
  "%ZZ",
  "null",
  "1h",
  " ",
];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data",
  "multipart/form-data; boundary=xyz",
  "application/octet-stream",
  "garbage",
  "",
  ";;;",
];
const HEADER_NAMES = [
  "authorization",
  "idempotency-key",
  "last-event-id",
  "accept",
  "accept-encoding",
  "origin",
  "x-forwarded-for",
  "x-anything",
  "cookie",
];
const DURATIONS = ["1h", "90s", "300ms", "2h45m10s", "0", "1.5h", "-1h", "1x", "", "9".repeat(400)];
/** Names of the errands of generated pipelines: few, so duplicates and cycles come up. */
const STEPS = ["fetch", "sum", "load", "mail", "zip"];
/** The dashboard's bundled files, by the names the page links them with. */
const DASHBOARD_FILES = [...(await dashboard()).assets.keys()];
const ASSETS = ["swagger-ui.css", "favicon-16x16.png", "favicon-32x32.png", "nothing.js", "a/b"];
/** Schedules are named from a few, so a PUT replaces one and a GET or DELETE finds one. */
const SCHEDULES = ["nightly", "poll", "a b", "ünï"];
/** Cron expressions, most of them valid; seconds, names and nicknames among them. */
const CRONS = [
  "*/5 * * * *",
  "*/30 * * * * *",
  "0 9 * JAN MON",
  "@hourly",
  "30 1 * * *",
  "61 * * * *",
  "bad",
  "",
];
const TIMEZONES = ["UTC", "Europe/London", "America/New_York", "Mars/Base", "+01:00", ""];
/** Idempotency keys come from a few, so repeats (same body or another) come up. */
const KEYS = ["k1", "k2", "k3"];
/** Query values by key. No long valid `wait`: a held claim would stall the run. */
const QUERY_VALUES: Record<string, string[]> = {
  limit: ["0", "1", "3", "10001", "-5", "abc", "1.5", "9".repeat(30)],
  after: ["", "0", "z", "x".repeat(65), "%ZZ", "1767225600000:z", "-1:a"],
  name: ["e", "f", "", "%25", "_", "%ZZ", "x".repeat(1001)],
  order: ["oldest", "newest", "newest", "", "NEWEST", "desc"],
  type: [...TYPES, "", "%ZZ"],
  wait: ["0.001", "0.01", "0.02", "1e-3", "0", "-1", "61", "Infinity", "NaN", "abc", ""],
  count: ["1", "3", "100", "0", "101", "1.5", "-1", "abc", ""],
  next: ["true", "false", "1", "0", "TRUE", "yes", ""],
  dryRun: ["1", "t", "T", "TRUE", "true", "True", "0", "f", "FALSE", "false", "yes", ""],
  status: [...PIPELINE_STATUSES, ...STATUSES, "", "x"],
  events: ["*", "", ",", ...EVENT_NAMES, EVENT_NAMES.join(","), "created,nope", "missed"],
  lastEventId: ["0", "1", "5", "-1", "abc", "99999999999999999999", ""],
  token: ["x"],
  x: ["1"],
  "": ["1"],
  "%ZZ": ["%ZZ"],
  "type[]": TYPES,
  minutes: ["1", "60", "1440", "0", "1441", "-1", "1.5", "abc", ""],
};
/** The query keys each route reads. */
function queryKeysOf(path: string): string[] {
  if (path.startsWith("/v1/errands/process")) return ["type", "wait"];
  if (path.startsWith("/v1/errands/claim")) return ["count", "wait"];
  if (path.includes("/completed")) return ["next"];
  if (path.startsWith("/v1/errands/notifications")) return ["events", "lastEventId"];
  if (path.startsWith("/v1/pipelines")) return ["status", "limit", "after"];
  if (path.startsWith("/v1/pipeline")) return ["dryRun"];
  if (path.startsWith("/v1/errands/scheduled")) return ["limit", "after"];
  if (path === "/v1/errands" || path === "/v1/errands/") {
    return ["limit", "after", "name", "status", "type", "order"];
  }
  if (path.startsWith("/v1/errands")) return ["limit", "after"];
  if (path.startsWith("/v1/types/history")) return ["minutes", "type"];
  if (path.startsWith("/v1/schedules")) return ["limit", "after"];
  return [];
}

class Fuzzer {
  readonly ids: string[] = [];
  /** Errands seen claimed, with the attempt their claim answered. */
  readonly claimed: Array<{ id: string; attempt: number }> = [];
  readonly pipelineIds: string[] = [];

  constructor(private readonly r: Random) {}

  /** A UUID from the seeded sequence: almost surely no errand's. */
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => this.r.int(16).toString(16)).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20)}`;
  }

  text(max = 20): string {
    const r = this.r;
    const kind = r.int(4);
    if (kind === 0) return r.pick(STRINGS);
    let s = "";
    const length = r.int(max);
    for (let i = 0; i < length; i++) {
      s +=
        kind === 1
          ? String.fromCharCode(32 + r.int(95))
          : kind === 2
            ? String.fromCharCode(r.int(0x3000))
            : String.fromCharCode(r.int(0x10000));
    }
    return s;
  }

  number(): number {
    return this.r.pick([
      0,
      -0,
      1,
      -1,
      50,
      100,
      101,
      0.5,
      1e308,
      -1e308,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER + 2,
      2 ** 63,
      this.r.int(1000) - 500,
      this.r.next() * 200 - 50,
    ]);
  }

  value(depth = 0): unknown {
    const r = this.r;
    const kind = depth > 4 ? r.int(4) : r.int(6);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return r.chance(0.5);
      case 2:
        return this.number();
      case 3:
        return this.text();
      case 4:
        return Array.from({ length: r.int(4) }, () => this.value(depth + 1));
      default: {
        const object: Record<string, unknown> = {};
        for (let i = r.int(5); i > 0; i--) {
          object[r.chance(0.8) ? r.pick(FIELDS) : this.text(8)] = this.value(depth + 1);
        }
        return object;
      }
    }
  }

  /** An errand as a create takes it, options included, now and then with the newer ones. */
  spec(): Record<string, unknown> {
    const r = this.r;
    const options: Record<string, unknown> = {
      ttl: r.int(3),
      retries: r.int(3),
      priority: r.int(5),
      deleteOnCompleted: r.chance(0.2),
    };
    // The newer options now and then, each out of its range or shape once in a while.
    if (r.chance(0.2)) {
      options.heartbeat = r.chance(0.9) ? r.pick([5, 30, 600]) : r.pick([4, 86_401]);
    }
    // Scheduled: at a time (maybe past), after a delay, or, refused, both.
    const when = r.int(24);
    if (when <= 2) options.runAt = Date.UTC(2026, 0, 1) + r.int(7_200_000) - 3_600_000;
    if (when >= 2 && when <= 4) options.delay = r.int(7_200_000);
    if (r.chance(0.15)) {
      options.backoff = r.chance(0.9)
        ? { type: r.pick(["fixed", "exponential"]), delay: r.pick([1, 1000, 60_000]) }
        : { type: r.pick(["linear", "fixed"]), delay: r.pick([0, 1]) };
    }
    return {
      name: this.text(5) || "n",
      type: r.pick(TYPES),
      options,
      data: { file: this.text(5) },
    };
  }

  /** A few ids for a bulk action: mostly of errands seen, some unknown, now and then repeated. */
  someIds(): string[] {
    return Array.from({ length: 1 + this.r.int(4) }, () =>
      this.ids.length > 0 && this.r.chance(0.8) ? this.r.pick(this.ids) : this.uuid(),
    );
  }

  /** A bulk action's filter: a status, a type, both, or (rarely) every errand. */
  filter(): Record<string, string> {
    const r = this.r;
    const filter: Record<string, string> = {};
    if (r.chance(0.7)) filter.status = r.pick(STATUSES);
    if (r.chance(0.7)) filter.type = r.pick(TYPES);
    return filter;
  }

  /** A pipeline of a few errands: mostly a valid graph; now and then a duplicate, an unknown
   *  name or a cycle. */
  pipeline(): Record<string, unknown> {
    const r = this.r;
    const n = 1 + r.int(STEPS.length);
    const names = STEPS.slice(0, n);
    if (r.chance(0.1)) names.push(r.pick(names));
    const errands = names.map((name) => ({ ...this.spec(), name }));
    const dependencies = Array.from({ length: r.int(n + 1) }, () => {
      // An edge from a later errand to an earlier one keeps the graph acyclic.
      const a = r.int(n);
      const b = r.int(n);
      const [target, dependsOn] = r.chance(0.1) ? [a, b] : [Math.max(a, b), Math.min(a, b)];
      return {
        target: names[target],
        dependsOn: r.chance(0.05) ? "nobody" : names[dependsOn],
      };
    }).filter((d) => d.target !== d.dependsOn || r.chance(0.2));
    return { name: this.text(5) || "p", deleteOnCompleted: r.chance(0.3), errands, dependencies };
  }

  /** A body close to what the route takes, then (if `bent`) a field dropped, retyped or added. */
  plausible(path: string, bent = true): Record<string, unknown> {
    const r = this.r;
    const attempt = () => (r.chance(0.3) ? { attempt: r.int(4) } : {});
    let body: Record<string, unknown>;
    if (path.startsWith("/v1/errands/batch")) {
      const n = r.chance(0.02) ? 1001 : r.int(6);
      body = { errands: Array.from({ length: n }, () => this.spec()) };
    } else if (path.startsWith("/v1/errands/ack")) {
      body = { items: Array.from({ length: r.chance(0.02) ? 1001 : r.int(6) }, () => this.ack()) };
    } else if (path.startsWith("/v1/errands/update/")) {
      body = r.chance(0.5) ? { status: r.pick(STATUSES) } : { delete: true };
    } else if (/^\/v1\/errands\/(retry|delete)/.test(path)) {
      body = r.chance(0.5) ? { ids: this.someIds() } : { filter: this.filter() };
      if (r.chance(0.2)) body.after = this.ids.length > 0 ? r.pick(this.ids) : "";
    } else if (path.startsWith("/v1/errands")) {
      body = this.spec();
    } else if (path.startsWith("/v1/pipeline")) {
      body = this.pipeline();
    } else if (path.startsWith("/v1/schedules/")) {
      // A cron expression (in a time zone, now and then) or an interval; rarely both or neither.
      const timing = r.int(10);
      body = { errand: this.spec() };
      if (timing < 5 || timing === 9) body.cron = r.pick(CRONS);
      if (timing < 5 && r.chance(0.4)) body.timezone = r.pick(TIMEZONES);
      if (timing >= 5 && timing < 9) body.every = r.pick([1000, 60_000, 3_600_000, 999, 1.5]);
      if (r.chance(0.3)) body.paused = r.chance(0.5);
      if (r.chance(0.3)) body.overlap = r.pick(["allow", "skip", "never"]);
    } else if (path.startsWith("/v1/types/")) {
      body = { paused: r.chance(0.3), concurrency: r.pick([null, 1, 2, 5, 0, -1, 1.5]) };
      if (r.chance(0.3)) delete body[r.pick(["paused", "concurrency"])];
      if (r.chance(0.3)) {
        body.rateLimit = r.pick([
          null,
          { max: r.pick([1, 3, 10]), perMs: r.pick([1, 1000, 60_000]) },
          { max: 0, perMs: 1000 },
          { max: 2 },
          5,
        ]);
      }
    } else if (path.endsWith("/log")) {
      body = { severity: r.pick(["INFO", "WARNING", "ERROR"]), message: this.text(), ...attempt() };
    } else if (path.endsWith("/failed")) {
      body = { reason: this.text(), ...attempt() };
    } else if (path.includes("/completed")) {
      body = { results: { n: r.int(10) }, ...attempt() };
    } else if (path.endsWith("/heartbeat")) {
      body = attempt();
    } else {
      body = { progress: r.int(120) - 10, ...attempt() };
    }
    if (!bent) return body;
    const keys = Object.keys(body);
    const bend = r.int(5);
    if (bend === 1 && keys.length > 0) delete body[r.pick(keys)];
    if (bend === 2 && keys.length > 0) body[r.pick(keys)] = this.value(1);
    if (bend === 3) body[r.pick(FIELDS)] = this.value(1);
    return body;
  }

  /**
   * An item of an ack: mostly on an errand seen claimed, at its attempt, a stale one or none;
   * now and then with both or neither of completed and failed.
   */
  ack(): Record<string, unknown> {
    const r = this.r;
    const held = this.claimed.length > 0 && r.chance(0.7) ? r.pick(this.claimed) : null;
    const item: Record<string, unknown> = { id: held?.id ?? r.pick([...this.ids, this.uuid()]) };
    if (held && r.chance(0.6)) item.attempt = r.chance(0.8) ? held.attempt : held.attempt + 1;
    // 0: neither, 1: both, then completed or failed alike.
    const outcome = r.int(10);
    if (outcome === 1 || (outcome >= 2 && outcome < 6)) {
      item.completed = r.chance(0.8) ? { results: { n: r.int(10) } } : {};
    }
    if (outcome === 1 || outcome >= 6) item.failed = { reason: this.text() };
    return item;
  }

  body(path: string): string | undefined {
    const r = this.r;
    // Half the bodies are near-valid, so requests get past validation to the lifecycle rules.
    switch (r.int(14)) {
      case 0:
        return undefined;
      case 1:
        return r.pick(["", " ", "\n", "{}", "[]", "null", "0", '""', "true"]);
      case 2: {
        const text = JSON.stringify(this.value()) ?? "null";
        return text.slice(0, r.int(text.length + 1));
      }
      case 3: {
        const n = r.pick([10, 999, 1001, 5000, 100_000]);
        const open = r.chance(0.5) ? "[" : '{"a":';
        const close = open === "[" ? "]" : "}";
        return `{"name":"n","type":"a","data":{"x":${open.repeat(n)}1${close.repeat(r.chance(0.9) ? n : n - 1)}}}`;
      }
      case 4:
        return r.pick([
          '{"progress":1e999}',
          '{"progress":-1e999}',
          '{"name":"n","type":"a","options":{"priority":123456789012345678901234567890}}',
          '{"name":"n","type":"a","options":{"ttl":1e400}}',
          '{"name":"n","type":"a","options":{"retries":-0.0}}',
          '{"results":{"big":1e400}}',
          '{"name":"n","type":"a","data":{"__proto__":{"polluted":true}}}',
          '{"__proto__":{"name":"n","type":"a"}}',
          `{"name":"${"x".repeat(100_000)}","type":"a"}`,
        ]);
      case 5:
        return Array.from({ length: r.int(64) }, () => String.fromCharCode(r.int(256))).join("");
      case 6:
        return JSON.stringify(this.value());
      default:
        return JSON.stringify(this.plausible(path));
    }
  }

  segment(kind: string): string {
    const r = this.r;
    const garbage = () => {
      switch (r.int(6)) {
        case 0:
          return encodeURIComponent(this.text().toWellFormed());
        case 1:
          return Array.from(
            { length: 1 + r.int(6) },
            () => `%${r.pick(["ZZ", "E0", "E0%A4", "00", "FF", "C3", "2F", "25", "G"])}`,
          ).join("");
        case 2:
          return "x".repeat(r.pick([65, 1000, 10_000]));
        case 3:
          return r.pick(["..", ".", "%2E%2E", "%2F", "a%2Fb", "%20", "~", "*", "%3F", "%23"]);
        case 4:
          return this.uuid();
        default:
          return encodeURIComponent(r.pick(STRINGS).toWellFormed()) || "x";
      }
    };
    if (r.chance(0.25)) return garbage();
    switch (kind) {
      case ":id":
        if (this.claimed.length > 0 && r.chance(0.4)) return r.pick(this.claimed).id;
        return this.ids.length > 0 && r.chance(0.8) ? r.pick(this.ids) : this.uuid();
      case ":pid":
        return this.pipelineIds.length > 0 && r.chance(0.8)
          ? r.pick(this.pipelineIds)
          : this.uuid();
      case ":asset":
        return r.chance(0.05) ? "swagger-ui-bundle.js" : r.pick(ASSETS);
      case ":file":
        return r.pick([...DASHBOARD_FILES, "nothing.js", "index.html"]);
      case ":key":
        return r.pick(["status", "type", "status", "type", "name", "id", "STATUS"]);
      case ":val":
        return r.pick([...STATUSES, ...TYPES]);
      case ":type":
        return r.pick(TYPES);
      case ":sname":
        return encodeURIComponent(r.pick(SCHEDULES));
      case ":duration":
        return encodeURIComponent(r.pick(DURATIONS));
      default:
        return garbage();
    }
  }

  query(path: string): string {
    const r = this.r;
    // The older claim form names its type in the query.
    if (/^\/v1\/errands\/process\/?$/.test(path) && r.chance(0.8)) {
      return `?type=${r.pick(TYPES)}${r.chance(0.3) ? `&wait=${r.pick(QUERY_VALUES.wait ?? [])}` : ""}`;
    }
    if (r.chance(0.5)) return "";
    const own = queryKeysOf(path);
    const all = Object.keys(QUERY_VALUES);
    const parts = Array.from({ length: 1 + r.int(3) }, () => {
      const key = own.length > 0 && r.chance(0.8) ? r.pick(own) : r.pick(all);
      return `${key}=${r.pick(QUERY_VALUES[key] ?? [""])}`;
    });
    return `?${parts.join("&")}`;
  }

  /**
   * A worker's well-formed call on an errand seen claimed, with its attempt, a stale one, or
   * none: so that progress, logs, heartbeats, failures and completions get past the checks.
   */
  workerCall(): FuzzRequest {
    const r = this.r;
    const { id, attempt } = r.pick(this.claimed);
    const [method, template] = r.pick(WORKER_CALLS);
    let path = template.replace(":id", id);
    if (path.endsWith("/completed") && r.chance(0.5)) path += "?next=true";
    const body = this.plausible(path, false);
    delete body.attempt;
    if (r.chance(0.5)) body.attempt = r.chance(0.8) ? attempt : attempt + 1;
    return { method, path, body: JSON.stringify(body), headers: {} };
  }

  request(): FuzzRequest {
    const r = this.r;
    if (this.claimed.length > 0 && r.chance(0.1)) return this.workerCall();
    let method: string;
    let path: string;
    if (r.chance(0.05)) {
      method = r.pick(METHODS);
      path = r.pick(["/", "/v1", "/v1/", "/v2/errands", "//v1//errands", `/${this.segment("")}`]);
    } else {
      // Pipelines are created more often: validation refuses most of the random ones.
      const [templateMethod, template] = r.chance(0.1)
        ? (["POST", "/v1/pipeline"] as const)
        : r.pick(TEMPLATES);
      method = r.chance(0.9) ? templateMethod : r.pick(METHODS);
      path = template.replace(/:[a-z]+/g, (kind) => this.segment(kind));
      if (r.chance(0.2)) path += "/";
    }
    path += this.query(path);
    const headers: Record<string, string> = {};
    if (r.chance(0.8)) headers["content-type"] = r.pick(CONTENT_TYPES);
    for (let i = r.int(3); i > 0; i--) {
      headers[r.pick(HEADER_NAMES)] = Array.from({ length: r.int(30) }, () =>
        String.fromCharCode(32 + r.int(95)),
      ).join("");
    }
    if (r.chance(0.15)) headers["idempotency-key"] = r.pick(KEYS);
    const body = method === "GET" || method === "HEAD" ? undefined : this.body(path);
    return { method, path, body, headers };
  }
}

interface FuzzRequest {
  method: string;
  path: string;
  body?: string;
  headers: Record<string, string>;
}

function describeCase(request: FuzzRequest): string {
  return `${request.method} ${request.path.slice(0, 200)} ${String(request.body).slice(0, 200)}`;
}

async function consistencyProblems(app: TestApp): Promise<string[]> {
  const problems: string[] = [];
  // The SQLite engine's file, checked page by page.
  if (!onPostgres) {
    const integrity = app.store.reader.query("PRAGMA integrity_check").all();
    if (JSON.stringify(integrity) !== '[{"integrity_check":"ok"}]') {
      problems.push(`integrity_check: ${JSON.stringify(integrity)}`);
    }
  }
  // Bookkeeping the TTL sweep, clear and log trimming rely on.
  const count = (sql: string) => countOf(app, sql);
  const stale = [
    "SELECT count(*) AS n FROM errands WHERE ttl_deadline IS NOT NULL AND status != 'active'",
    "SELECT count(*) AS n FROM errands WHERE finished IS NOT NULL AND status NOT IN ('completed', 'failed')",
    "SELECT count(*) AS n FROM errands WHERE finished IS NULL AND status IN ('completed', 'failed')",
    "SELECT count(*) AS n FROM errand_logs WHERE errand_id NOT IN (SELECT id FROM errands)",
    `SELECT count(*) AS n FROM (SELECT errand_id FROM errand_logs GROUP BY errand_id
       HAVING count(*) > ${app.config.maxLogs}) AS overlong`,
  ];
  for (const sql of stale) {
    const n = await count(sql);
    if (n !== 0) problems.push(`${n} rows: ${sql}`);
  }
  // The per-type counts the server keeps (claims check concurrency against them); PostgreSQL
  // keeps them as counts plus the deltas of writes not yet folded in.
  const kept = await countRows(
    app,
    onPostgres
      ? `SELECT type, status, sum(count) AS count FROM (
           SELECT type, status, count FROM type_counts
           UNION ALL SELECT type, status, delta FROM type_count_deltas) c
         GROUP BY type, status HAVING sum(count) != 0 ORDER BY type, status`
      : "SELECT type, status, count FROM type_counts WHERE count != 0 ORDER BY type, status",
  );
  const actual = await countRows(
    app,
    "SELECT type, status, count(*) AS count FROM errands GROUP BY type, status ORDER BY type, status",
  );
  if (JSON.stringify(kept) !== JSON.stringify(actual)) {
    problems.push(`type_counts ${JSON.stringify(kept)} != ${JSON.stringify(actual)}`);
  }
  const listed = await app.call("GET", "/v1/errands");
  if (listed.status !== 200) problems.push(`list answered ${listed.status}`);
  const errands = listed.body.results as Array<Record<string, unknown>>;
  // Newest first is the same list the other way round.
  const newest = await app.call("GET", "/v1/errands?order=newest");
  const ids = (list: Array<Record<string, unknown>>) => JSON.stringify(list.map((e) => e.id));
  if (ids(newest.body.results) !== ids([...errands].reverse())) {
    problems.push("the list newest first is not the list oldest first reversed");
  }
  let byStatus = 0;
  for (const status of STATUSES) {
    byStatus += (await app.call("GET", `/v1/errands/list/status/${status}`)).body.results.length;
  }
  if (byStatus !== errands.length) {
    problems.push(`${errands.length} errands listed, ${byStatus} by status`);
  }
  for (const e of errands) {
    const where = `errand ${e.id} (${e.status})`;
    if (!(STATUSES as readonly unknown[]).includes(e.status)) problems.push(`${where}: bad status`);
    if (e.status === "active" && typeof e.started !== "number") {
      problems.push(`${where}: active without started`);
    }
    if (e.status === "completed" && typeof e.completed !== "number") {
      problems.push(`${where}: completed without completed time`);
    }
    if (e.status === "failed" && typeof e.failed !== "number") {
      problems.push(`${where}: failed without failed time`);
    }
    const progress = e.progress as number;
    if (typeof progress !== "number" || progress < 0 || progress > 100) {
      problems.push(`${where}: progress ${progress}`);
    }
    if (!Number.isInteger(e.attempts) || (e.attempts as number) < 0) {
      problems.push(`${where}: attempts ${e.attempts}`);
    }
    for (const log of (e.logs as Array<{ severity: string }> | undefined) ?? []) {
      if (!["INFO", "WARNING", "ERROR"].includes(log.severity)) {
        problems.push(`${where}: log severity ${log.severity}`);
      }
    }
    const one = await app.call("GET", `/v1/errand/${e.id}`);
    // Only one errand's answer carries the results of its dependencies.
    const alone = { ...one.body.results, dependencyResults: undefined };
    if (JSON.stringify(alone) !== JSON.stringify(e)) {
      problems.push(`${where}: GET by id differs from the list`);
    }
  }
  const types = (await app.call("GET", "/v1/types")).body.results as Array<{
    counts: Record<string, number>;
  }>;
  const counted = types.flatMap((t) => Object.values(t.counts)).reduce((a, b) => a + b, 0);
  if (counted !== errands.length) {
    problems.push(`${errands.length} errands listed, ${counted} counted by /v1/types`);
  }
  problems.push(...(await pipelineProblems(app)));
  problems.push(...(await historyProblems(app)));
  problems.push(...(await scheduleProblems(app, errands)));
  return problems;
}

/** Schedules: each as listed and as got alike, ticking unless paused, one errand per tick. */
async function scheduleProblems(
  app: TestApp,
  errands: Array<Record<string, unknown>>,
): Promise<string[]> {
  const problems: string[] = [];
  const listed = await app.call("GET", "/v1/schedules");
  if (listed.status !== 200) problems.push(`schedules list answered ${listed.status}`);
  const schedules = listed.body.results as Array<Record<string, unknown>>;
  for (const s of schedules) {
    const one = await app.call("GET", `/v1/schedules/${encodeURIComponent(String(s.name))}`);
    if (JSON.stringify(one.body.results) !== JSON.stringify(s)) {
      problems.push(`schedule ${s.name}: GET by name differs from the list`);
    }
    if ((s.nextRunAt === null) !== s.paused) {
      problems.push(`schedule ${s.name}: paused ${s.paused} with next run ${s.nextRunAt}`);
    }
    if ((s.cron === undefined) === (s.every === undefined)) {
      problems.push(`schedule ${s.name}: not exactly one of cron and every`);
    }
  }
  // No tick of a schedule made two errands.
  const made = errands
    .map((e) => (e.logs as Array<{ message: string }> | undefined)?.[0]?.message ?? "")
    .filter((message) => message.startsWith("Created by schedule "));
  if (new Set(made).size !== made.length) {
    problems.push(`${made.length - new Set(made).size} ticks made more than one errand`);
  }
  return problems;
}

/** The history's totals per minute are the sums of its minutes per type. */
async function historyProblems(app: TestApp): Promise<string[]> {
  await app.sweep();
  const n = await countOf(
    app,
    `SELECT count(*) AS n FROM minute_totals t
      WHERE completed != (SELECT coalesce(sum(completed), 0) FROM minute_counts WHERE minute = t.minute)
         OR failed != (SELECT coalesce(sum(failed), 0) FROM minute_counts WHERE minute = t.minute)
         OR waiting != (SELECT coalesce(sum(waiting), 0) FROM minute_counts WHERE minute = t.minute)`,
  );
  return n === 0 ? [] : [`${n} minutes of the history whose totals are not their types' sums`];
}

/** Pipelines: whole (errands and edges of their own), and each status as its errands make it. */
async function pipelineProblems(app: TestApp): Promise<string[]> {
  const problems: string[] = [];
  const count = (sql: string) => countOf(app, sql);
  const broken = [
    "SELECT count(*) AS n FROM errands WHERE pipeline IS NOT NULL AND pipeline NOT IN (SELECT id FROM pipelines)",
    "SELECT count(*) AS n FROM pipelines p WHERE NOT EXISTS (SELECT 1 FROM errands WHERE pipeline = p.id)",
    `SELECT count(*) AS n FROM pipeline_dependencies d
      WHERE NOT EXISTS (SELECT 1 FROM errands WHERE id = d.target AND pipeline = d.pipeline)
         OR NOT EXISTS (SELECT 1 FROM errands WHERE id = d.depends_on AND pipeline = d.pipeline)`,
    // A deleteOnCompleted pipeline goes when it completes.
    "SELECT count(*) AS n FROM pipelines WHERE status = 'completed' AND delete_on_completed = TRUE",
    "SELECT count(*) AS n FROM pipelines WHERE status = 'completed' AND ended IS NULL",
    // Settled (completed, or failed with nothing left to run) exactly when it has a finish time.
    `SELECT count(*) AS n FROM pipelines p
      WHERE (finished IS NOT NULL) != (status IN ('completed', 'failed') AND NOT EXISTS (
        SELECT 1 FROM errands WHERE pipeline = p.id AND status IN ('inactive', 'active', 'scheduled')))`,
  ];
  for (const sql of broken) {
    const n = await count(sql);
    if (n !== 0) problems.push(`${n} rows: ${sql}`);
  }
  // The README's rule: failed if any errand failed; else completed when all are; else active
  // once any has started; else inactive.
  const wrong = (await storeRows(
    app,
    `SELECT id, status, CASE
         WHEN EXISTS (SELECT 1 FROM errands WHERE pipeline = p.id AND status = 'failed') THEN 'failed'
         WHEN NOT EXISTS (SELECT 1 FROM errands WHERE pipeline = p.id AND status != 'completed')
           THEN 'completed'
         WHEN EXISTS (SELECT 1 FROM errands WHERE pipeline = p.id
                        AND (status IN ('active', 'completed') OR started IS NOT NULL)) THEN 'active'
         ELSE 'inactive' END AS expected
       FROM pipelines p`,
  )) as Array<{ id: string; status: string; expected: string }>;
  for (const p of wrong.filter((row) => row.status !== row.expected)) {
    problems.push(`pipeline ${p.id} is ${p.status}, its errands make it ${p.expected}`);
  }
  const listed = await app.call("GET", "/v1/pipelines");
  if (listed.status !== 200) problems.push(`pipelines list answered ${listed.status}`);
  const pipelines = listed.body.results as Array<{ id: string; status: string }>;
  if (pipelines.length !== wrong.length) {
    problems.push(`${pipelines.length} pipelines listed, ${wrong.length} stored`);
  }
  let byStatus = 0;
  for (const status of PIPELINE_STATUSES) {
    byStatus += (await app.call("GET", `/v1/pipelines?status=${status}`)).body.results.length;
  }
  if (byStatus !== pipelines.length) {
    problems.push(`${pipelines.length} pipelines listed, ${byStatus} by status`);
  }
  for (const p of pipelines) {
    const one = (await app.call("GET", `/v1/pipeline/${p.id}`)).body.results;
    const own = await count(`SELECT count(*) AS n FROM errands WHERE pipeline = '${p.id}'`);
    if (one?.status !== p.status || one.errands.length !== own) {
      problems.push(`pipeline ${p.id}: GET by id differs from the list or its stored errands`);
    }
  }
  return problems;
}

/** The `n` a count query answers on the app's store (PostgreSQL's bigint comes as text). */
async function countOf(app: TestApp, sql: string): Promise<number> {
  const [row] = await storeRows(app, sql);
  return row ? Number(row.n) : -1;
}

/** Rows of type, status and count, the count as a number whichever engine answered. */
async function countRows(app: TestApp, sql: string) {
  return (await storeRows(app, sql)).map((row) => ({
    type: row.type,
    status: row.status,
    count: Number(row.count),
  }));
}

/** Sends a request as a client would; an event stream that opens is closed at once. */
async function send(app: TestApp, request: FuzzRequest): Promise<Answer> {
  const init: RequestInit = { method: request.method, headers: request.headers };
  if (request.body !== undefined) init.body = request.body;
  const res = await app.app.handle(new Request(`http://localhost${request.path}`, init));
  if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
    await res.body?.cancel();
    return { status: res.status, body: null, headers: res.headers };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body, headers: res.headers };
}

/** The `method route` pairs Elysia's after-response hook has counted a 2xx of in /metrics. */
async function routesAnswered2xx(app: TestApp): Promise<Set<string>> {
  const text = (await app.call("GET", "/metrics")).body as string;
  const pattern = /^errands_http_requests_total\{method="([^"]+)",route="([^"]+)",code="2\d\d"\}/gm;
  return new Set([...text.matchAll(pattern)].map((m) => `${m[1]} ${m[2]}`));
}

test("random requests on every route never get a 5xx or a throw, and the store stays consistent", async () => {
  const app = makeApp({ env: { ERRANDS_SYNC: "normal", ERRANDS_MAX_LOGS: "20" } });
  const r = new Random(SEED);
  const fuzz = new Fuzzer(r);
  const failures: string[] = [];
  const statuses = new Map<number, number>();

  // Some errands to work on, so that ids in paths often exist.
  for (let i = 0; i < 30; i++) {
    const answer = await app.call("POST", "/v1/errands", {
      name: `seed ${i}`,
      type: TYPES[i % TYPES.length],
      options: { retries: i % 3, ttl: i % 2, priority: i % 4 },
    });
    fuzz.ids.push(answer.body.results.id);
  }

  /** Remembers the ids an answer names, so later requests often hit them. */
  const learn = (path: string, body: { results?: unknown; next?: unknown }) => {
    const results = Array.isArray(body.results) ? body.results : [body.results];
    let errands: unknown[] = [body.next, ...results];
    if (path.startsWith("/v1/pipeline")) {
      errands = [];
      for (const p of results as Array<{ id?: unknown; errands?: unknown[] } | null>) {
        if (typeof p?.id !== "string") continue;
        if (!fuzz.pipelineIds.includes(p.id)) fuzz.pipelineIds.push(p.id);
        errands.push(...(p.errands ?? []));
      }
    }
    for (const e of errands) {
      const { id, status, attempts } = (e ?? {}) as Record<string, unknown>;
      if (typeof id !== "string") continue;
      if (!fuzz.ids.includes(id)) fuzz.ids.push(id);
      if (status === "active" && typeof attempts === "number") {
        fuzz.claimed.push({ id, attempt: attempts });
      }
    }
  };

  const run = async (request: FuzzRequest) => {
    let answer: Answer;
    try {
      // A request left unanswered (a lost long poll, a stream never closed) is a failure too.
      let timer: Timer | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no answer in 10 s")), 10_000);
      });
      answer = await Promise.race([send(app, request), hung]).finally(() => clearTimeout(timer));
    } catch (error) {
      failures.push(`threw ${String(error)}: ${describeCase(request)}`);
      return;
    }
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    if (answer.status >= 500 || answer.status < 200) {
      failures.push(`${answer.status} ${JSON.stringify(answer.body)}: ${describeCase(request)}`);
    } else if (answer.status >= 400 && request.method !== "HEAD") {
      if (typeof answer.body?.message !== "string") {
        failures.push(`${answer.status} without the error envelope: ${describeCase(request)}`);
      } else if (/\.ts:\d+/.test(JSON.stringify(answer.body))) {
        failures.push(`stack trace in a body: ${describeCase(request)}`);
      }
    }
    if (answer.status === 200 && answer.body && typeof answer.body === "object") {
      learn(request.path, answer.body);
    }
  };

  let done = 0;
  while (done < CASES) {
    // Mostly one at a time; sometimes a burst, so failing and succeeding writes share a commit
    // and long-poll claims meet the creates that serve them.
    const burst = r.chance(0.2) ? 2 + r.int(10) : 1;
    const requests = Array.from({ length: Math.min(burst, CASES - done) }, () => fuzz.request());
    await Promise.all(requests.map(run));
    done += requests.length;
    if (r.chance(0.03)) {
      app.clock.advance(r.int(3 * 3_600_000));
      await app.sweep();
    }
  }

  expect(failures).toEqual([]);
  // The fuzzer reached past validation: state changed and errors of every kind were answered.
  expect(statuses.get(200) ?? 0).toBeGreaterThan(300);
  expect(statuses.get(400) ?? 0).toBeGreaterThan(100);
  expect(statuses.get(404) ?? 0).toBeGreaterThan(100);
  expect(statuses.get(409) ?? 0).toBeGreaterThan(0);
  expect(fuzz.pipelineIds.length).toBeGreaterThan(10);

  // Every route of the app was reached and got past validation at least once (a 2xx under its
  // own label in the metrics). Counted after each answer has gone: wait for the last, bounded.
  const routes = app.app.routes.map((route) => `${route.method} ${route.path}`);
  let missing: string[] = routes;
  for (const deadline = Date.now() + 5000; missing.length > 0 && Date.now() < deadline; ) {
    const answered = await routesAnswered2xx(app);
    missing = routes.filter((route) => !answered.has(route));
    if (missing.length > 0) await Bun.sleep(2);
  }
  expect(missing).toEqual([]);

  // Nothing is left holding on: every long poll was answered, every stream closed.
  expect(app.waiters.count).toBe(0);
  await eventually(() => app.streams.count === 0);

  expect(await consistencyProblems(app)).toEqual([]);
  app.close();
}, 60_000);
