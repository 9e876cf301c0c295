// Seeded fuzzing of every errand route: random methods, paths, headers and bodies must never
// get a 5xx or make app.handle throw, and the store must stay consistent afterwards.

import { afterAll, expect, test } from "bun:test";
import { STATUSES } from "../src/store/records.ts";
import { type Answer, makeApp, removeTempDirs, type TestApp } from "./harness.ts";

afterAll(removeTempDirs);

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_101);
const CASES = 3000;

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

const TEMPLATES = [
  ["POST", "/v1/errands"],
  ["GET", "/v1/errands"],
  ["GET", "/v1/errands/list/:key/:val"],
  ["POST", "/v1/errands/process/:type"],
  ["POST", "/v1/errands/process"],
  ["POST", "/v1/errands/update/:key/:val"],
  ["POST", "/v1/errands/clear/:duration"],
  ["GET", "/v1/errand/:id"],
  ["PUT", "/v1/errand/:id"],
  ["POST", "/v1/errand/:id/log"],
  ["PUT", "/v1/errand/:id/failed"],
  ["PUT", "/v1/errand/:id/completed"],
  ["POST", "/v1/errand/:id/retry"],
  ["DELETE", "/v1/errand/:id"],
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

class Fuzzer {
  readonly ids: string[] = [];

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

  /** A body close to what the route takes, then bent: a field dropped, retyped, or added. */
  plausible(path: string): Record<string, unknown> {
    const r = this.r;
    let body: Record<string, unknown>;
    if (path === "/v1/errands") {
      body = {
        name: this.text(5) || "n",
        type: r.pick(TYPES),
        options: {
          ttl: r.int(3),
          retries: r.int(3),
          priority: r.int(5),
          deleteOnCompleted: r.chance(0.2),
        },
        data: { file: this.text(5) },
      };
    } else if (path.endsWith("/log")) {
      body = { severity: r.pick(["INFO", "WARNING", "ERROR"]), message: this.text() };
    } else if (path.endsWith("/failed")) {
      body = { reason: this.text() };
    } else if (path.endsWith("/completed")) {
      body = { results: { n: r.int(10) } };
    } else if (path.includes("/update/")) {
      body = r.chance(0.5) ? { status: r.pick(STATUSES) } : { delete: true };
    } else {
      body = { progress: r.int(120) - 10 };
    }
    const keys = Object.keys(body);
    const bend = r.int(5);
    if (bend === 1 && keys.length > 0) delete body[r.pick(keys)];
    if (bend === 2 && keys.length > 0) body[r.pick(keys)] = this.value(1);
    if (bend === 3) body[r.pick(FIELDS)] = this.value(1);
    return body;
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
        return this.ids.length > 0 && r.chance(0.8) ? r.pick(this.ids) : this.uuid();
      case ":key":
        return r.pick(["status", "type", "status", "type", "name", "id", "STATUS"]);
      case ":val":
        return r.pick([...STATUSES, ...TYPES]);
      case ":type":
        return r.pick(TYPES);
      case ":duration":
        return encodeURIComponent(r.pick(DURATIONS));
      default:
        return garbage();
    }
  }

  query(): string {
    const r = this.r;
    if (r.chance(0.7)) return "";
    const parts = Array.from({ length: 1 + r.int(3) }, () => {
      const key = r.pick(["type", "limit", "after", "x", "", "type[]", "%ZZ"]);
      const value = r.pick([
        ...TYPES,
        "0",
        "1",
        "10001",
        "-5",
        "abc",
        "%ZZ",
        "",
        "1.5",
        "9".repeat(30),
      ]);
      return `${key}=${value}`;
    });
    return `?${parts.join("&")}`;
  }

  request(): { method: string; path: string; body?: string; headers: Record<string, string> } {
    const r = this.r;
    let method: string;
    let path: string;
    if (r.chance(0.05)) {
      method = r.pick(METHODS);
      path = r.pick(["/", "/v1", "/v1/", "/v2/errands", "//v1//errands", `/${this.segment("")}`]);
    } else {
      const [templateMethod, template] = r.pick(TEMPLATES);
      method = r.chance(0.9) ? templateMethod : r.pick(METHODS);
      path = template.replace(/:[a-z]+/g, (kind) => this.segment(kind));
      if (r.chance(0.2)) path += "/";
    }
    path += this.query();
    const headers: Record<string, string> = {};
    if (r.chance(0.8)) headers["content-type"] = r.pick(CONTENT_TYPES);
    for (let i = r.int(3); i > 0; i--) {
      headers[r.pick(HEADER_NAMES)] = Array.from({ length: r.int(30) }, () =>
        String.fromCharCode(32 + r.int(95)),
      ).join("");
    }
    const body = method === "GET" || method === "HEAD" ? undefined : this.body(path);
    return { method, path, body, headers };
  }
}

function describeCase(request: { method: string; path: string; body?: string }): string {
  return `${request.method} ${request.path.slice(0, 200)} ${String(request.body).slice(0, 200)}`;
}

async function consistencyProblems(app: TestApp): Promise<string[]> {
  const problems: string[] = [];
  const integrity = app.store.reader.query("PRAGMA integrity_check").all();
  if (JSON.stringify(integrity) !== '[{"integrity_check":"ok"}]') {
    problems.push(`integrity_check: ${JSON.stringify(integrity)}`);
  }
  // Bookkeeping the TTL sweep, clear and log trimming rely on.
  const count = (sql: string) =>
    (app.store.reader.query(sql).get() as { n: number } | null)?.n ?? -1;
  const stale = [
    "SELECT count(*) AS n FROM errands WHERE ttl_deadline IS NOT NULL AND status != 'active'",
    "SELECT count(*) AS n FROM errands WHERE finished IS NOT NULL AND status NOT IN ('completed', 'failed')",
    "SELECT count(*) AS n FROM errands WHERE finished IS NULL AND status IN ('completed', 'failed')",
    "SELECT count(*) AS n FROM errand_logs WHERE errand_id NOT IN (SELECT id FROM errands)",
    `SELECT count(*) AS n FROM (SELECT errand_id FROM errand_logs GROUP BY errand_id
       HAVING count(*) > ${app.config.maxLogs})`,
  ];
  for (const sql of stale) {
    const n = count(sql);
    if (n !== 0) problems.push(`${n} rows: ${sql}`);
  }
  // The per-type counts the server keeps (claims check concurrency against them).
  const kept = app.store.reader
    .query("SELECT type, status, count FROM type_counts WHERE count != 0 ORDER BY type, status")
    .all();
  const actual = app.store.reader
    .query(
      "SELECT type, status, count(*) AS count FROM errands GROUP BY type, status ORDER BY type, status",
    )
    .all();
  if (JSON.stringify(kept) !== JSON.stringify(actual)) {
    problems.push(`type_counts ${JSON.stringify(kept)} != ${JSON.stringify(actual)}`);
  }
  const listed = await app.call("GET", "/v1/errands");
  if (listed.status !== 200) problems.push(`list answered ${listed.status}`);
  const errands = listed.body.results as Array<Record<string, unknown>>;
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
    if (JSON.stringify(one.body.results) !== JSON.stringify(e)) {
      problems.push(`${where}: GET by id differs from the list`);
    }
  }
  return problems;
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

  const run = async (request: ReturnType<Fuzzer["request"]>) => {
    let answer: Answer;
    try {
      answer = await app.call(request.method, request.path, request.body, request.headers);
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
    const results = answer.body?.results;
    if (
      answer.status === 200 &&
      typeof results?.id === "string" &&
      !fuzz.ids.includes(results.id)
    ) {
      fuzz.ids.push(results.id);
    }
  };

  let done = 0;
  while (done < CASES) {
    // Mostly one at a time; sometimes a burst, so failing and succeeding writes share a commit.
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

  expect(await consistencyProblems(app)).toEqual([]);
  app.close();
}, 60_000);
