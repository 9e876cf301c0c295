// Several server processes on one PostgreSQL database, run as an operator runs them: claims,
// a concurrency limit, the event stream, long polls and background work across instances, and
// what is left after a kill -9 of one instance or a restart of PostgreSQL itself.
// Needs ERRANDS_TEST_DATABASE=postgres://…; skipped, and said so, without it. Each test makes
// a database of its own there and drops it after.

import { afterEach, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand, TEST_DATABASE } from "./harness.ts";
import { freePort, type ServerProcess, startServer } from "./server-process.ts";
import { SseReader } from "./sse.ts";

const url = TEST_DATABASE;
if (url === null) {
  console.warn(
    "ERRANDS_TEST_DATABASE is not set: the scale-out tests (several server processes on one PostgreSQL) are skipped",
  );
}

const PG_BIN = "/usr/lib/postgresql/15/bin";
/** Why the test that restarts PostgreSQL cannot run here, or null. */
const noPrivateCluster =
  process.getuid?.() !== 0
    ? "it runs initdb and pg_ctl as the postgres user, which needs root"
    : !existsSync(`${PG_BIN}/initdb`) || !existsSync(`${PG_BIN}/pg_ctl`)
      ? `no PostgreSQL binaries in ${PG_BIN}`
      : null;
if (url !== null && noPrivateCluster !== null) {
  console.warn(`the PostgreSQL restart test is skipped: ${noPrivateCluster}`);
}

/** Bounds every request, so a server that hangs fails the test instead of holding it; above
 *  the longest long poll (60 s). */
const REQUEST_LIMIT_MS = 70_000;

/** What a test set up, undone after it, last first, whatever happened. */
const undo: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of undo.splice(0).reverse()) {
    await step().catch((error) => console.error("cleanup failed:", error));
  }
});

interface Database {
  url: string;
  /** For reading what the instances stored, as the truth to compare their answers with. */
  sql: InstanceType<typeof Bun.SQL>;
}

async function onAdmin(adminUrl: string, statement: string): Promise<void> {
  const admin = new Bun.SQL(adminUrl, { max: 1 });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.close();
  }
}

let databases = 0;
/** A new database on the server of `adminUrl`, dropped after the test. */
async function freshDatabase(adminUrl: string): Promise<Database> {
  const name = `errands_scale_${process.pid}_${++databases}`;
  await onAdmin(adminUrl, `CREATE DATABASE "${name}"`);
  undo.push(() => onAdmin(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  const address = new URL(adminUrl);
  address.pathname = `/${name}`;
  const sql = new Bun.SQL(address.toString(), { max: 2 });
  undo.push(() => sql.close());
  return { url: address.toString(), sql };
}

/** `n` server processes on the database, each on a port of its own; killed after the test. */
async function instances(
  databaseUrl: string,
  n: number,
  env: Record<string, string> = {},
): Promise<ServerProcess[]> {
  const started = await Promise.allSettled(
    Array.from({ length: n }, () =>
      startServer({ ERRANDS_DATABASE: databaseUrl, ERRANDS_LOG_LEVEL: "warn", ...env }),
    ),
  );
  const servers: ServerProcess[] = [];
  for (const outcome of started) {
    if (outcome.status === "fulfilled") {
      const server = outcome.value;
      servers.push(server);
      undo.push(async () => {
        await server.stop("SIGKILL");
        // At ERRANDS_LOG_LEVEL=warn a server says nothing unless something went wrong.
        if (server.output() !== "") console.warn(`${server.base} wrote:\n${server.output()}`);
      });
    }
  }
  for (const outcome of started) if (outcome.status === "rejected") throw outcome.reason;
  return servers;
}

/** The error lines a server logged (a sweep that failed, a request answered 500). */
function errorsLogged(server: ServerProcess): string[] {
  return server
    .output()
    .split("\n")
    .filter((line) => line.includes('"level":"error"'));
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: any;
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body: parsed };
}

const ok = (answer: Answer) => answer.status >= 200 && answer.status < 300;

/** Polls `ready` until it holds, failing with `what` after `ms`. */
async function until(
  what: string,
  ready: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`never happened within ${ms} ms: ${what}`);
    await Bun.sleep(10);
  }
}

/** Every errand stored, read through one instance (the whole list, streamed). */
async function storedErrands(server: ServerProcess): Promise<Map<string, { status: string }>> {
  const answer = await call(server.base, "GET", "/v1/errands/");
  expect(answer.status).toBe(200);
  return new Map(answer.body.results.map((e: { id: string; status: string }) => [e.id, e]));
}

interface LoggedEvent {
  id: number;
  event: string;
  errand: string;
  status: string;
  log?: string;
}

/** The event log as stored, once every committed event has its place. */
async function eventLog(db: Database): Promise<LoggedEvent[]> {
  await until("every committed event has its place in the log", async () => {
    const [row] = await db.sql`SELECT count(*)::int AS n FROM events WHERE id IS NULL`;
    return row.n === 0;
  });
  const rows = await db.sql`SELECT id, event, payload FROM events ORDER BY id`;
  return rows.map((row: { id: string; event: string; payload: string }) => {
    const data = JSON.parse(row.payload);
    return {
      id: Number(row.id),
      event: row.event,
      errand: data.errand.id,
      status: data.errand.status,
      ...(data.log ? { log: data.log.message } : {}),
    };
  });
}

/** Events as a stream delivered them, in the shape of eventLog's. */
function streamed(reader: SseReader): LoggedEvent[] {
  return reader.frames
    .filter((f) => f.event === "message")
    .map((f) => {
      const data = JSON.parse(f.data ?? "{}");
      return {
        id: Number(f.id),
        event: data.event,
        errand: data.errand.id,
        status: data.errand.status,
        ...(data.log ? { log: data.log.message } : {}),
      };
    });
}

/** Opens the event stream of a server; cancelled after the test. */
async function openStream(server: ServerProcess, lastEventId?: number): Promise<SseReader> {
  const res = await fetch(`${server.base}/v1/errands/notifications?events=*`, {
    headers: lastEventId === undefined ? {} : { "last-event-id": String(lastEventId) },
  });
  expect(res.status).toBe(200);
  const reader = new SseReader(res);
  undo.push(() => reader.cancel());
  // The stream listens from its first byte on.
  await until("the stream opens", () => reader.text.startsWith("retry:"), 10_000);
  return reader;
}

/** How many claims wait on a server (its long-poll gauge). */
async function longPolls(server: ServerProcess): Promise<number> {
  const res = await fetch(`${server.base}/metrics`, { signal: AbortSignal.timeout(5000) });
  const match = /^errands_long_poll_waiters (\d+)$/m.exec(await res.text());
  return Number(match?.[1] ?? 0);
}

/** Errand ids in a list that occur more than once. */
function repeated(ids: string[]): string[] {
  const seen = new Set<string>();
  return ids.filter((id) => seen.has(id) || !seen.add(id));
}

/** How many events of each errand match `which`. */
function countBy(events: LoggedEvent[], which: (e: LoggedEvent) => boolean): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) if (which(e)) counts.set(e.errand, (counts.get(e.errand) ?? 0) + 1);
  return counts;
}

describe.skipIf(url === null)("several server processes on one PostgreSQL", () => {
  const adminUrl = url as string;

  test("3 instances, 64 workers, 5,000 errands: none claimed twice, none lost", async () => {
    const db = await freshDatabase(adminUrl);
    const servers = await instances(db.url, 3);
    const at = (i: number) => servers[i % servers.length] as ServerProcess;
    const TOTAL = 5000;
    const PRODUCERS = 8;
    const WORKERS = 64;
    const deadline = Date.now() + 100_000;

    const created = new Set<string>();
    const claims: Array<{ id: string; attempt: number }> = [];
    const completed = new Set<string>();
    const unexpected: string[] = [];
    let producing = PRODUCERS;

    const producer = async (p: number) => {
      for (let i = p; i < TOTAL && Date.now() < deadline; i += PRODUCERS) {
        const made = await call(at(i).base, "POST", "/v1/errands/", {
          name: `e${i}`,
          type: "scale",
        });
        if (ok(made)) created.add(made.body.results.id);
        else unexpected.push(`create: ${made.status} ${JSON.stringify(made.body)}`);
      }
      producing--;
    };
    // Each claim through the next instance, each completion through the one after it.
    const worker = async (w: number) => {
      for (let turn = w; turn < w + 20_000 && Date.now() < deadline; turn++) {
        if (producing === 0 && completed.size >= created.size) return;
        const claim = await call(at(turn).base, "POST", "/v1/errands/process/scale?wait=1");
        if (claim.status === 404) continue;
        if (claim.status !== 200) {
          unexpected.push(`claim: ${claim.status} ${JSON.stringify(claim.body)}`);
          continue;
        }
        const { id, attempts } = claim.body.results;
        claims.push({ id, attempt: attempts });
        const done = await call(at(turn + 1).base, "PUT", `/v1/errand/${id}/completed`, {
          results: { worker: w },
          attempt: attempts,
        });
        if (ok(done)) completed.add(id);
        else unexpected.push(`complete: ${done.status} ${JSON.stringify(done.body)}`);
      }
    };
    const started = performance.now();
    await Promise.all([
      ...Array.from({ length: PRODUCERS }, (_, p) => producer(p)),
      ...Array.from({ length: WORKERS }, (_, w) => worker(w)),
    ]);
    const seconds = (performance.now() - started) / 1000;
    console.info(
      `scale-out: ${TOTAL} errands through 3 instances, ${WORKERS} workers: ${claims.length} claims in ${seconds.toFixed(1)} s`,
    );

    expect(unexpected).toEqual([]);
    expect(created.size).toBe(TOTAL);
    const claimed = claims.map((c) => c.id);
    expect(repeated(claimed)).toEqual([]);
    expect(claims.filter((c) => c.attempt !== 1)).toEqual([]);
    expect([...created].filter((id) => !completed.has(id))).toEqual([]);
    expect(new Set(claimed)).toEqual(created);
    const byStatus = await db.sql`SELECT status, count(*)::int AS n FROM errands GROUP BY status`;
    expect([...byStatus]).toEqual([{ status: "completed", n: TOTAL }]);
    // Every instance counts them alike: the per-type counts add up across writers.
    for (const server of servers) {
      const types = await call(server.base, "GET", "/v1/types");
      expect(types.body.results.find((t: { type: string }) => t.type === "scale")?.counts).toEqual({
        completed: TOTAL,
      });
      expect(errorsLogged(server)).toEqual([]);
    }
  });

  test("a concurrency limit of 5 holds across 3 instances: never more active, sampled all along", async () => {
    const db = await freshDatabase(adminUrl);
    const servers = await instances(db.url, 3);
    const at = (i: number) => servers[i % servers.length] as ServerProcess;
    const N = 400;
    const LIMIT = 5;
    const limited = await call(at(0).base, "PUT", "/v1/types/limited", { concurrency: LIMIT });
    expect(limited.status).toBe(200);
    const made = await call(at(1).base, "POST", "/v1/errands/batch", {
      errands: Array.from({ length: N }, (_, i) => ({ name: `l${i}`, type: "limited" })),
    });
    expect(made.status).toBe(200);
    const ids = new Set<string>(made.body.results.map((e: { id: string }) => e.id));
    const deadline = Date.now() + 50_000;

    // Claimed and not yet sent back: each of these is active in the store, so never above 5.
    let holding = 0;
    let mostHeld = 0;
    let mostListed = 0;
    let mostStored = 0;
    let samples = 0;
    const claimed: string[] = [];
    const completed = new Set<string>();
    const unexpected: string[] = [];
    const finished = () => completed.size >= N || Date.now() > deadline;

    const worker = async (w: number) => {
      for (let turn = w; turn < w + 5000 && !finished(); turn++) {
        const claim = await call(at(turn).base, "POST", "/v1/errands/process/limited?wait=1");
        if (claim.status === 404) continue;
        if (claim.status !== 200) {
          unexpected.push(`claim: ${claim.status} ${JSON.stringify(claim.body)}`);
          continue;
        }
        holding++;
        mostHeld = Math.max(mostHeld, holding);
        const { id, attempts } = claim.body.results;
        claimed.push(id);
        await Bun.sleep(1 + Math.random() * 10);
        holding--;
        const done = await call(at(turn + 1).base, "PUT", `/v1/errand/${id}/completed`, {
          attempt: attempts,
        });
        if (ok(done)) completed.add(id);
        else unexpected.push(`complete: ${done.status} ${JSON.stringify(done.body)}`);
      }
    };
    // Reads the type's active count through a random instance, and in the table itself.
    const sampler = async () => {
      while (!finished()) {
        const server = at(Math.floor(Math.random() * servers.length));
        const types = await call(server.base, "GET", "/v1/types");
        const entry = types.body.results.find((t: { type: string }) => t.type === "limited");
        mostListed = Math.max(mostListed, entry?.counts.active ?? 0);
        const [row] = await db.sql`
          SELECT count(*)::int AS n FROM errands WHERE type = 'limited' AND status = 'active'`;
        mostStored = Math.max(mostStored, row.n);
        samples++;
        await Bun.sleep(2);
      }
    };
    await Promise.all([sampler(), sampler(), ...Array.from({ length: 24 }, (_, w) => worker(w))]);
    console.info(
      `concurrency ${LIMIT} over 3 instances, 24 workers, ${N} errands: most active ${mostListed} in /v1/types, ${mostStored} stored, ${mostHeld} held by workers, over ${samples} samples`,
    );

    expect(unexpected).toEqual([]);
    expect(mostListed).toBeLessThanOrEqual(LIMIT);
    expect(mostStored).toBeLessThanOrEqual(LIMIT);
    expect(mostHeld).toBeLessThanOrEqual(LIMIT);
    expect(samples).toBeGreaterThan(0);
    expect(repeated(claimed)).toEqual([]);
    expect(completed).toEqual(ids);
    for (const server of servers) expect(errorsLogged(server)).toEqual([]);
  });

  test("an SSE client on B gets every event of writes made through A and C, in order, and resumes on C after a drop", async () => {
    const db = await freshDatabase(adminUrl);
    const [a, b, c] = (await instances(db.url, 3)) as [ServerProcess, ServerProcess, ServerProcess];
    const first = await openStream(b);
    const WRITERS = 8;
    const EACH = 40;
    const made: string[] = [];
    let writing = WRITERS;

    // Each writer its own type, so its claim takes the errand it just made.
    const writer = async (w: number) => {
      for (let i = 0; i < EACH; i++) {
        const [one, other] = i % 2 === 0 ? [a, c] : [c, a];
        const created = await call(one.base, "POST", "/v1/errands/", {
          name: `w${w}-${i}`,
          type: `sse-${w}`,
        });
        expect(created.status).toBe(200);
        const { id } = created.body.results;
        const claim = await call(other.base, "POST", `/v1/errands/process/sse-${w}`);
        expect(claim.status).toBe(200);
        expect(claim.body.results.id).toBe(id);
        const done = await call(one.base, "PUT", `/v1/errand/${id}/completed`, {
          attempt: claim.body.results.attempts,
        });
        expect(done.status).toBe(200);
        made.push(id);
      }
      writing--;
    };
    // Mid-load, the client on B is cut off, and goes on on C from the last id it got.
    const dropAndResume = async () => {
      await until("B's stream has 300 events", () => streamed(first).length >= 300);
      await first.cancel();
      const lastId = streamed(first).at(-1)?.id as number;
      const stillWriting = writing > 0;
      return { second: await openStream(c, lastId), lastId, stillWriting };
    };
    const [resumed] = await Promise.all([
      dropAndResume(),
      ...Array.from({ length: WRITERS }, (_, w) => writer(w)),
    ]);
    const { second, lastId, stillWriting } = resumed;

    const log = await eventLog(db);
    expect(log.length).toBe(3 * WRITERS * EACH);
    // Places are 1, 2, 3, … with no gap, whichever instance wrote each event.
    expect(log.map((e) => e.id)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1));
    const newest = log.at(-1)?.id as number;
    await until("C's stream reaches the newest event", () =>
      streamed(second).some((e) => e.id === newest),
    );
    const before = streamed(first);
    const after = streamed(second);
    console.info(
      `SSE: ${log.length} events of ${made.length} errands written through A and C; ${before.length} read on B, dropped at id ${lastId}${stillWriting ? " mid-load" : ""}, ${after.length} more resumed on C`,
    );
    expect(after[0]?.id).toBe(lastId + 1);
    // Together, exactly the log: every event once, in order.
    expect([...before, ...after]).toEqual(log);
    // Each errand made: created, then claimed, then completed, and nothing else.
    const perErrand = new Map<string, string[]>();
    for (const e of log) perErrand.set(e.errand, [...(perErrand.get(e.errand) ?? []), e.event]);
    expect(new Set(perErrand.keys())).toEqual(new Set(made));
    for (const events of perErrand.values()) {
      expect(events).toEqual(["created", "processing", "completed"]);
    }
    for (const server of [a, b, c]) expect(errorsLogged(server)).toEqual([]);
  });

  test("kill -9 of one instance mid-load: every acknowledged write is there", async () => {
    const db = await freshDatabase(adminUrl);
    const servers = await instances(db.url, 3);
    const victim = servers[2] as ServerProcess;
    const survivor = servers[0] as ServerProcess;
    let stop = false;
    let killed = false;
    const deadline = Date.now() + 50_000;
    const created = new Map<string, ServerProcess>();
    const completed = new Set<string>();
    const unexpected: string[] = [];
    const serverFor = (i: number) => {
      const server = servers[i % servers.length] as ServerProcess;
      return killed && server === victim ? null : server;
    };
    /** A request that may meet the victim's death: a network error only counts from it. */
    const attempt = async (
      server: ServerProcess,
      method: string,
      path: string,
      body?: unknown,
    ): Promise<Answer | null> => {
      try {
        return await call(server.base, method, path, body);
      } catch (error) {
        if (server !== victim) unexpected.push(`${method} ${path}: ${error}`);
        return null;
      }
    };

    const producer = async (p: number) => {
      for (let i = p; !stop && i < p + 20_000 && Date.now() < deadline; i++) {
        const server = serverFor(i);
        if (!server) continue;
        const made = await attempt(server, "POST", "/v1/errands/", { name: `k${i}`, type: "kill" });
        if (made && ok(made)) created.set(made.body.results.id, server);
        else if (made) unexpected.push(`create: ${made.status} ${JSON.stringify(made.body)}`);
      }
    };
    const worker = async (w: number) => {
      for (let turn = w; !stop && turn < w + 20_000 && Date.now() < deadline; turn++) {
        const server = serverFor(turn);
        if (!server) continue;
        const claim = await attempt(server, "POST", "/v1/errands/process/kill");
        if (!claim || claim.status === 404) {
          await Bun.sleep(2);
          continue;
        }
        if (claim.status !== 200) {
          unexpected.push(`claim: ${claim.status} ${JSON.stringify(claim.body)}`);
          continue;
        }
        const { id, attempts } = claim.body.results;
        const done = await attempt(server, "PUT", `/v1/errand/${id}/completed`, {
          attempt: attempts,
        });
        if (done && ok(done)) completed.add(id);
        else if (done) unexpected.push(`complete: ${done.status} ${JSON.stringify(done.body)}`);
      }
    };
    const load = [
      ...Array.from({ length: 12 }, (_, p) => producer(p)),
      ...Array.from({ length: 12 }, (_, w) => worker(w)),
    ];
    await until("600 creates acknowledged", () => created.size >= 600);
    killed = true;
    victim.proc.kill(9);
    await victim.proc.exited;
    const atKill = created.size;
    await until("600 more creates acknowledged after the kill", () => created.size >= atKill + 600);
    stop = true;
    await Promise.all(load);

    const throughVictim = [...created.values()].filter((s) => s === victim).length;
    console.info(
      `kill -9: ${created.size} creates and ${completed.size} completions acknowledged, ${throughVictim} creates through the killed instance, ${atKill} before the kill`,
    );
    expect(unexpected).toEqual([]);
    expect(throughVictim).toBeGreaterThan(0);
    const stored = await storedErrands(survivor);
    expect([...created.keys()].filter((id) => !stored.has(id))).toEqual([]);
    expect([...completed].filter((id) => stored.get(id)?.status !== "completed")).toEqual([]);
    // The events the killed instance committed get their places from the others.
    const log = await eventLog(db);
    expect(log.map((e) => e.id)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1));
    const [head] = await db.sql`SELECT newest FROM event_head`;
    expect(Number(head.newest)).toBe(log.length);
  });

  test("a long-poll claim wakes on a create, a retry or an unblock made through another instance", async () => {
    const db = await freshDatabase(adminUrl);
    const [a, b, c] = (await instances(db.url, 3)) as [ServerProcess, ServerProcess, ServerProcess];
    /** A claim held on B, once B counts it among its waiters (wrapped: awaiting it is the answer's to do). */
    const pollOnB = async (type: string) => {
      const waiting = await longPolls(b);
      const answer = call(b.base, "POST", `/v1/errands/process/${type}?wait=20`);
      await until(`B holds the claim of ${type}`, async () => (await longPolls(b)) > waiting);
      return { answer };
    };

    // A create through A.
    const forCreate = (await pollOnB("lp-create")).answer;
    const made = await call(a.base, "POST", "/v1/errands/", { name: "new", type: "lp-create" });
    expect(made.status).toBe(200);
    const woke = await forCreate;
    expect(woke.status).toBe(200);
    expect(woke.body.results.id).toBe(made.body.results.id);

    // A retry through A of an errand that failed through C.
    const failing = await call(a.base, "POST", "/v1/errands/", { name: "again", type: "lp-retry" });
    const claim = await call(c.base, "POST", "/v1/errands/process/lp-retry");
    expect(claim.body.results.id).toBe(failing.body.results.id);
    const failed = await call(c.base, "PUT", `/v1/errand/${failing.body.results.id}/failed`, {
      reason: "broken",
    });
    expect(failed.body.results.status).toBe("failed");
    const forRetry = (await pollOnB("lp-retry")).answer;
    expect((await call(a.base, "POST", `/v1/errand/${failing.body.results.id}/retry`)).status).toBe(
      200,
    );
    const retried = await forRetry;
    expect(retried.status).toBe(200);
    expect(retried.body.results.id).toBe(failing.body.results.id);
    expect(retried.body.results.attempts).toBe(2);

    // An unblock: the dependency of a pipeline made through A completed through C.
    const pipeline = await call(a.base, "POST", "/v1/pipeline/", {
      name: "lp",
      errands: [
        { name: "first", type: "lp-first" },
        { name: "second", type: "lp-second" },
      ],
      dependencies: [{ target: "second", dependsOn: "first" }],
    });
    expect(pipeline.status).toBe(200);
    const forUnblock = (await pollOnB("lp-second")).answer;
    const firstClaim = await call(c.base, "POST", "/v1/errands/process/lp-first");
    expect(firstClaim.status).toBe(200);
    const firstDone = await call(
      c.base,
      "PUT",
      `/v1/errand/${firstClaim.body.results.id}/completed`,
      {
        results: { rows: 7 },
      },
    );
    expect(firstDone.status).toBe(200);
    const unblocked = await forUnblock;
    expect(unblocked.status).toBe(200);
    expect(unblocked.body.results.name).toBe("second");
    expect(unblocked.body.results.dependencyResults).toEqual({ first: { rows: 7 } });
    for (const server of [a, b, c]) expect(errorsLogged(server)).toEqual([]);
  });

  test("3 instances sweeping: each scheduled errand coming due is queued exactly once", async () => {
    const db = await freshDatabase(adminUrl);
    const servers = await instances(db.url, 3);
    // The same delay for all: they come due together, and every instance's sweep wants them.
    const batches = await Promise.all(
      servers.map((server, s) =>
        call(server.base, "POST", "/v1/errands/batch", {
          errands: Array.from({ length: 100 }, (_, i) => ({
            name: `due-${s}-${i}`,
            type: "due",
            options: { delay: 3000 },
          })),
        }),
      ),
    );
    const ids = new Set<string>();
    for (const batch of batches) {
      expect(batch.status).toBe(200);
      for (const e of batch.body.results) {
        expect(e.status).toBe("scheduled");
        ids.add(e.id);
      }
    }
    await until("no errand is scheduled any more", async () => {
      const [row] = await db.sql`SELECT count(*)::int AS n FROM errands WHERE status = 'scheduled'`;
      return row.n === 0;
    });
    const log = await eventLog(db);
    const promotions = countBy(log, (e) => e.event === "updated" && e.status === "inactive");
    console.info(`schedules: ${ids.size} errands due at once on 3 instances, ${log.length} events`);
    expect(new Set(promotions.keys())).toEqual(ids);
    expect([...promotions.values()].filter((n) => n !== 1)).toEqual([]);
    expect(log.filter((e) => e.event !== "created" && e.event !== "updated")).toEqual([]);
    const byStatus = await db.sql`SELECT status, count(*)::int AS n FROM errands GROUP BY status`;
    expect([...byStatus]).toEqual([{ status: "inactive", n: ids.size }]);
    for (const server of servers) expect(errorsLogged(server)).toEqual([]);
  });

  test("3 instances sweeping: each errand past its TTL or heartbeat fails exactly once", async () => {
    const db = await freshDatabase(adminUrl);
    const servers = await instances(db.url, 3);
    const at = (i: number) => servers[i % servers.length] as ServerProcess;
    const N = 300;
    // A heartbeat of 5 s, the least there is; a TTL is whole minutes, so its deadline is
    // moved back a minute in the table below, as if that minute had passed.
    const kinds = [
      { type: "ttl", options: { ttl: 1 }, reason: "TTL Expired" },
      { type: "silent", options: { heartbeat: 5 }, reason: "Heartbeat timeout" },
    ];
    const ids = new Map<string, Set<string>>();
    for (const [k, kind] of kinds.entries()) {
      const made = await call(at(k).base, "POST", "/v1/errands/batch", {
        errands: Array.from({ length: N }, (_, i) => ({
          name: `${kind.type}-${i}`,
          type: kind.type,
          options: kind.options,
        })),
      });
      expect(made.status).toBe(200);
      ids.set(kind.type, new Set(made.body.results.map((e: { id: string }) => e.id)));
    }
    // Workers claim them all through the three instances and never report back.
    const claimed: string[] = [];
    const claimer = async (w: number) => {
      for (const kind of kinds) {
        for (let turn = w; turn < w + 1000; turn++) {
          const claim = await call(at(turn).base, "POST", `/v1/errands/process/${kind.type}`);
          if (claim.status === 404) break;
          expect(claim.status).toBe(200);
          claimed.push(claim.body.results.id);
        }
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, w) => claimer(w)));
    expect(claimed.length).toBe(2 * N);
    expect(repeated(claimed)).toEqual([]);
    const moved = await db.sql`
      UPDATE errands SET ttl_deadline = ttl_deadline - 60000 WHERE type = 'ttl' RETURNING id`;
    expect(moved.length).toBe(N);
    await until("no errand is active any more", async () => {
      const [row] = await db.sql`SELECT count(*)::int AS n FROM errands WHERE status = 'active'`;
      return row.n === 0;
    });
    const log = await eventLog(db);
    console.info(`expiry: ${2 * N} errands claimed through 3 instances, ${log.length} events`);
    for (const kind of kinds) {
      const failures = log.filter(
        (e) => e.event === "failed" && (ids.get(kind.type) as Set<string>).has(e.errand),
      );
      const perErrand = countBy(failures, () => true);
      expect(new Set(perErrand.keys())).toEqual(ids.get(kind.type) as Set<string>);
      expect([...perErrand.values()].filter((n) => n !== 1)).toEqual([]);
      expect(failures.filter((e) => e.status !== "failed" || e.log !== kind.reason)).toEqual([]);
    }
    const byStatus = await db.sql`SELECT status, count(*)::int AS n FROM errands GROUP BY status`;
    expect([...byStatus]).toEqual([{ status: "failed", n: 2 * N }]);
    for (const server of servers) expect(errorsLogged(server)).toEqual([]);
  });

  test("3 instances pruning the event log: old events go, ids go on after the newest", async () => {
    const db = await freshDatabase(adminUrl);
    const servers = await instances(db.url, 3, { ERRANDS_EVENT_RETENTION: "1s" });
    for (const [s, server] of servers.entries()) {
      const made = await call(server.base, "POST", "/v1/errands/batch", {
        errands: Array.from({ length: 100 }, (_, i) => ({ name: `p${s}-${i}`, type: "prune" })),
      });
      expect(made.status).toBe(200);
    }
    await until("every event is pruned", async () => {
      const [row] = await db.sql`SELECT count(*)::int AS n FROM events`;
      return row.n === 0;
    });
    const [head] = await db.sql`SELECT newest FROM event_head`;
    expect(Number(head.newest)).toBe(300);
    // A client resuming from before the prune is told what it missed.
    const resumed = await openStream(servers[2] as ServerProcess, 5);
    await until("the stream says events were missed", () =>
      resumed.frames.some((f) => f.event === "missed"),
    );
    const missed = resumed.frames.find((f) => f.event === "missed");
    expect(JSON.parse(missed?.data ?? "{}")).toMatchObject({ event: "missed", after: 5 });
    // The next event takes the place after the newest ever handed out.
    const made = await call((servers[1] as ServerProcess).base, "POST", "/v1/errands/", {
      name: "after",
      type: "prune",
    });
    expect(made.status).toBe(200);
    await until("the stream gets the new event", () => streamed(resumed).length > 0);
    expect(streamed(resumed)).toEqual([
      { id: 301, event: "created", errand: made.body.results.id, status: "inactive" },
    ]);
    for (const server of servers) expect(errorsLogged(server)).toEqual([]);
  });

  test.skipIf(noPrivateCluster !== null)(
    "PostgreSQL restarted mid-load: 503s while it is down, then serving again by itself, nothing acknowledged lost",
    async () => {
      const cluster = await privateCluster();
      const db = await freshDatabase(cluster.url);
      const [a, b] = (await instances(db.url, 2)) as [ServerProcess, ServerProcess];
      const at = (i: number) => (i % 2 === 0 ? a : b);
      // Opened before it all, held through the outage.
      const stream = await openStream(b);
      let phase: "up" | "down" | "back" = "up";
      const unavailable = { up: 0, down: 0, back: 0 };
      const created = new Map<string, string>();
      const completed = new Set<string>();
      const unexpected: string[] = [];
      let stop = false;
      const deadline = Date.now() + 80_000;
      /** Counts a 503 with its envelope once PostgreSQL stops; anything else but 2xx and 404 is unexpected. */
      const expected = (what: string, answer: Answer): boolean => {
        if (ok(answer)) return true;
        if (
          phase !== "up" &&
          answer.status === 503 &&
          answer.body?.message === "Storage unavailable" &&
          typeof answer.body?.error === "string"
        ) {
          unavailable[phase]++;
        } else if (answer.status !== 404) {
          unexpected.push(`${what} (${phase}): ${answer.status} ${JSON.stringify(answer.body)}`);
        }
        return false;
      };
      const send = async (i: number, method: string, path: string, body?: unknown) => {
        try {
          return await call(at(i).base, method, path, body);
        } catch (error) {
          unexpected.push(`${method} ${path} (${phase}): ${error}`);
          return null;
        }
      };
      const producer = async (p: number) => {
        for (let i = p; !stop && i < p + 20_000 && Date.now() < deadline; i++) {
          const made = await send(i, "POST", "/v1/errands/", { name: `r${i}`, type: "restart" });
          if (made && expected("create", made)) created.set(made.body.results.id, phase);
          else await Bun.sleep(20);
        }
      };
      const worker = async (w: number) => {
        for (let turn = w; !stop && turn < w + 20_000 && Date.now() < deadline; turn++) {
          const claim = await send(turn, "POST", "/v1/errands/process/restart");
          if (!claim || !expected("claim", claim)) {
            await Bun.sleep(20);
            continue;
          }
          const { id, attempts } = claim.body.results;
          const done = await send(turn + 1, "PUT", `/v1/errand/${id}/completed`, {
            attempt: attempts,
          });
          if (done && expected("complete", done)) completed.add(id);
        }
      };
      const load = [
        ...Array.from({ length: 6 }, (_, p) => producer(p)),
        ...Array.from({ length: 4 }, (_, w) => worker(w)),
      ];

      await until("300 creates acknowledged", () => created.size >= 300);
      // A claim held on B through the outage, for an errand made through A after it.
      const heldThrough = call(b.base, "POST", "/v1/errands/process/held?wait=60");
      await until("B holds the claim", async () => (await longPolls(b)) > 0);
      phase = "down";
      await cluster.stop();
      // Each answer is now a 503 with the envelope, health included, and both processes stay up.
      for (const server of [a, b]) {
        const refused = await call(server.base, "POST", "/v1/errands/", {
          name: "x",
          type: "down",
        });
        expect(refused.status).toBe(503);
        expect(refused.body).toEqual({ message: "Storage unavailable", error: expect.any(String) });
        const health = await call(server.base, "GET", "/health");
        expect(health.status).toBe(503);
        expect(health.body).toEqual({ message: "Storage unavailable", error: expect.any(String) });
        // Its detail says what failed, not the message again.
        expect(health.body.error).not.toBe(health.body.message);
        const read = await call(server.base, "GET", `/v1/errand/${[...created.keys()][0]}`);
        expect(read.status).toBe(503);
        // A whole list, streamed, is refused too, not a 200 cut short after its first bytes.
        const list = await call(server.base, "GET", "/v1/errands/");
        expect(list.status).toBe(503);
        expect(list.body).toEqual({ message: "Storage unavailable", error: expect.any(String) });
      }
      // A client resuming now cannot be told where to go on from: its stream ends, so that its
      // EventSource comes back later with the same Last-Event-ID.
      const cut = new SseReader(
        await fetch(`${b.base}/v1/errands/notifications`, { headers: { "last-event-id": "1" } }),
      );
      undo.push(() => cut.cancel());
      await until("the stream resumed during the outage ends", () => cut.done);
      // A stream opened after it: once this one has had its keep-alive, so has the one cut.
      const later = await openStream(b);
      await until("the load has met 1,000 503s", () => unavailable.down >= 1000);
      expect(a.proc.exitCode).toBeNull();
      expect(b.proc.exitCode).toBeNull();
      const createdBefore = created.size;
      await cluster.start();
      await until(
        "both instances are healthy again",
        async () =>
          (await call(a.base, "GET", "/health")).status === 200 &&
          (await call(b.base, "GET", "/health")).status === 200,
        60_000,
      );
      phase = "back";
      // Each instance has its LISTEN connection back (events would otherwise come by the poll).
      await until("both instances LISTEN again", async () => {
        const [row] = await db.sql`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND query = 'LISTEN "errands_log"'`;
        return row.n === 2;
      });
      await until("300 more creates acknowledged", () => created.size >= createdBefore + 300);
      stop = true;
      await Promise.all(load);

      // The claim held on B wakes on a create through A: B hears the log again.
      const made = await call(a.base, "POST", "/v1/errands/", { name: "y", type: "held" });
      expect(made.status).toBe(200);
      const woke = await heldThrough;
      expect(woke.status).toBe(200);
      expect(woke.body.results.id).toBe(made.body.results.id);

      console.info(
        `PostgreSQL restart: ${created.size} creates and ${completed.size} completions acknowledged over 2 instances; 503s: ${unavailable.up} before, ${unavailable.down} while down, ${unavailable.back} after the restart`,
      );
      expect(unexpected).toEqual([]);
      expect(unavailable.back).toBe(0);
      const stored = await storedErrands(a);
      expect([...created.keys()].filter((id) => !stored.has(id))).toEqual([]);
      expect([...completed].filter((id) => stored.get(id)?.status !== "completed")).toEqual([]);
      // The stream held through the outage has every event of the log, once, in order.
      const log = await eventLog(db);
      expect(log.map((e) => e.id)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1));
      const newest = log.at(-1)?.id as number;
      await until("B's stream reaches the newest event", () =>
        streamed(stream).some((e) => e.id === newest),
      );
      expect(streamed(stream)).toEqual(log);
      await until(
        "a keep-alive on the stream opened during the outage",
        () => later.text.includes(": keep-alive") || later.done,
      );
      expect(later.done).toBe(false);
      expect(a.proc.exitCode).toBeNull();
      expect(b.proc.exitCode).toBeNull();
    },
    120_000,
  );
});

/**
 * A PostgreSQL cluster of this test's own, on a free port of 127.0.0.1, made by initdb as the
 * postgres user in a temp dir; stopped and removed after the test.
 */
async function privateCluster() {
  const dir = mkdtempSync(join(tmpdir(), "errands-pg-"));
  undo.push(async () => rmSync(dir, { recursive: true, force: true }));
  const [uid, gid] = await Promise.all([
    runCommand(["id", "-u", "postgres"]),
    runCommand(["id", "-g", "postgres"]),
  ]);
  chownSync(dir, Number(uid.stdout), Number(gid.stdout));
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = async (args: string[]) => {
    const run = await runCommand(["runuser", "-u", "postgres", "--", ...args]);
    if (run.code !== 0) throw new Error(`${args.join(" ")} failed: ${run.stdout}${run.stderr}`);
  };
  const pgCtl = (...args: string[]) =>
    asPostgres([`${PG_BIN}/pg_ctl`, "-D", data, "-l", join(dir, "log"), "-w", "-t", "60", ...args]);
  await asPostgres([`${PG_BIN}/initdb`, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const start = () => pgCtl("-o", `-p ${port} -k /tmp -c listen_addresses=127.0.0.1`, "start");
  await start();
  undo.push(() => pgCtl("-m", "immediate", "stop").catch(() => {}));
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop: () => pgCtl("-m", "fast", "stop"),
  };
}
