// Rate limits per type: at most `max` claims of a type start in any window of `perMs`, across
// workers and instances; what a claim held back answers, long polls, batches, the controls'
// route, metrics, restarts, and the cost of the check.

import type { Statement } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../src/clock.ts";
import { WriteStatements } from "../src/store/sqlite/access.ts";
import { TypeWrites } from "../src/store/sqlite/types.ts";
import { type Answer, appsPerTest, onPostgres, type TestApp, withExplainedTx } from "./harness.ts";
import { eventually } from "./sse.ts";

const app = appsPerTest();

/** Queues `n` errands of type `t`, named e0, e1, … */
async function queue(a: TestApp, n: number, type = "t") {
  const errands = Array.from({ length: n }, (_, i) => ({ name: `e${i}`, type }));
  const answer = await a.call("POST", "/v1/errands/batch", { errands });
  expect(answer.status).toBe(200);
}

async function limit(a: TestApp, rateLimit: unknown, type = "t") {
  return a.call("PUT", `/v1/types/${type}`, { rateLimit });
}

const claim = (a: TestApp, type = "t") => a.call("POST", `/v1/errands/process/${type}`);

/** A claim over a real request, so a long poll can be left waiting. */
async function held(a: TestApp, path: string): Promise<Answer> {
  const res = await a.app.handle(new Request(`http://localhost${path}`, { method: "POST" }));
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** Claims at each of these moments (ms after `start`, now unless given): the statuses answered. */
async function claimsAt(a: TestApp, moments: number[], start = a.clock.now()): Promise<number[]> {
  const statuses: number[] = [];
  for (const at of moments) {
    a.clock.advance(start + at - a.clock.now());
    statuses.push((await claim(a)).status);
  }
  return statuses;
}

describe("a rate limit", () => {
  test("lets at most `max` claims start in a window, and more as the window slides", async () => {
    const a = app();
    await queue(a, 20);
    expect((await limit(a, { max: 10, perMs: 1000 })).status).toBe(200);
    const start = a.clock.now();
    // Ten claims from t = 0 to 900 ms: all start; the eleventh, at 950, does not.
    const first = await claimsAt(a, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 950]);
    expect(first).toEqual([...Array(10).fill(200), 404]);
    // At 1000 the claim of t = 0 has left the window, at 1100 the one of 100, and so on.
    expect(await claimsAt(a, [1000, 1050, 1100, 1101, 1200, 1250], start)).toEqual([
      200, 404, 200, 404, 200, 404,
    ]);
    // Each errand started when it was claimed, at most ten in any second.
    const active = (await a.call("GET", "/v1/errands?status=active")).body.results;
    const starts = active
      .map((e: { started: number }) => e.started - start)
      .sort((x: number, y: number) => x - y);
    expect(starts).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200]);
  });

  test("a claim held back is 404 No jobs, saying when the next may start, with Retry-After", async () => {
    const a = app();
    await queue(a, 5);
    await limit(a, { max: 2, perMs: 1000 });
    await claimsAt(a, [0, 770]);
    a.clock.advance(10);
    const refused = await claim(a);
    expect(refused.status).toBe(404);
    expect(refused.body).toEqual({
      message: "No jobs",
      error: "rate limit 2 per 1000 ms reached; next claim possible in 220 ms",
      retryAfterMs: 220,
    });
    // Seconds, rounded up: a client that waits so long never comes too soon.
    expect(refused.headers.get("retry-after")).toBe("1");
    // The older form of the route answers the same.
    const older = await a.call("POST", "/v1/errands/process?type=t");
    expect(older.status).toBe(404);
    expect(older.body.retryAfterMs).toBe(220);
    a.clock.advance(220);
    expect((await claim(a)).status).toBe(200);
    // With nothing queued, No jobs says no more than that.
    const none = await claim(a, "empty");
    expect(none.body).toEqual({ message: "No jobs", error: 'no errand of type "empty" waits' });
    expect(none.headers.get("retry-after")).toBeNull();
  });

  test("a long window's Retry-After is its seconds rounded up", async () => {
    const a = app();
    await queue(a, 2);
    await limit(a, { max: 1, perMs: 60_000 });
    expect((await claim(a)).status).toBe(200);
    a.clock.advance(1_500);
    const refused = await claim(a);
    expect(refused.body.retryAfterMs).toBe(58_500);
    expect(refused.headers.get("retry-after")).toBe("59");
  });

  test("a batch claim gets at most what the limit allows, then [] with Retry-After", async () => {
    const a = app();
    await queue(a, 12);
    await limit(a, { max: 5, perMs: 1000 });
    const batch = (count: number) => a.call("POST", `/v1/errands/claim/t?count=${count}`);
    expect((await batch(3)).body.results).toHaveLength(3);
    a.clock.advance(400);
    expect((await batch(10)).body.results).toHaveLength(2);
    const refused = await batch(10);
    expect(refused.status).toBe(200);
    expect(refused.body).toEqual({ status: "OK", results: [], retryAfterMs: 600 });
    expect(refused.headers.get("retry-after")).toBe("1");
    // The three of t = 0 leave the window at 1000, the two of 400 at 1400.
    a.clock.advance(600);
    expect((await batch(10)).body.results).toHaveLength(3);
    a.clock.advance(400);
    const last = await batch(10);
    expect(last.body.results).toHaveLength(2);
    expect(last.body.retryAfterMs).toBeUndefined();
    expect(last.headers.get("retry-after")).toBeNull();
  });

  test("complete?next=true starts the next claim only as the limit allows", async () => {
    const a = app();
    await queue(a, 3);
    await limit(a, { max: 1, perMs: 1000 });
    const first = (await claim(a)).body.results;
    const done = await a.call("PUT", `/v1/errand/${first.id}/completed?next=true`);
    expect(done.status).toBe(200);
    expect(done.body.next).toBeNull();
    a.clock.advance(1000);
    expect((await claim(a)).status).toBe(200);
  });

  test("a long poll waits while the limit holds, and is served once the window moves on", async () => {
    const a = app();
    await queue(a, 3);
    await limit(a, { max: 1, perMs: 1000 });
    expect((await claim(a)).status).toBe(200);
    const waiting = held(a, "/v1/errands/process/t?wait=30");
    await eventually(() => a.waiters.count === 1);
    // Still within the window: the sweep leaves it waiting.
    a.clock.advance(999);
    await a.sweep();
    expect(a.waiters.count).toBe(1);
    a.clock.advance(1);
    await a.sweep();
    const served = await waiting;
    expect(served.status).toBe(200);
    expect(served.body.results.started).toBe(a.clock.now());
  });

  test("a batch long poll is served with the allowance once the window moves on", async () => {
    const a = app();
    await queue(a, 10);
    await limit(a, { max: 3, perMs: 1000 });
    expect((await a.call("POST", "/v1/errands/claim/t?count=3")).body.results).toHaveLength(3);
    const waiting = held(a, "/v1/errands/claim/t?count=10&wait=30");
    await eventually(() => a.waiters.count === 1);
    a.clock.advance(1000);
    await a.sweep();
    expect((await waiting).body.results).toHaveLength(3);
  });

  test("a long poll that runs out under the limit says when the next claim may start", async () => {
    const a = app();
    await queue(a, 2);
    await limit(a, { max: 1, perMs: 10_000 });
    expect((await claim(a)).status).toBe(200);
    const answer = await held(a, "/v1/errands/process/t?wait=0.05");
    expect(answer.status).toBe(404);
    expect(answer.body.retryAfterMs).toBe(10_000);
    expect(answer.headers.get("retry-after")).toBe("10");
  });

  test("raising or clearing the limit wakes the waiters at once", async () => {
    const a = app();
    await queue(a, 3);
    await limit(a, { max: 1, perMs: 60_000 });
    expect((await claim(a)).status).toBe(200);
    const waiting = held(a, "/v1/errands/process/t?wait=30");
    await eventually(() => a.waiters.count === 1);
    await limit(a, { max: 2, perMs: 60_000 });
    expect((await waiting).status).toBe(200);
    const next = held(a, "/v1/errands/process/t?wait=30");
    await eventually(() => a.waiters.count === 1);
    await limit(a, null);
    expect((await next).status).toBe(200);
  });

  test("GET /v1/types shows the limit and the claims in its window", async () => {
    const a = app();
    await queue(a, 4);
    await limit(a, { max: 3, perMs: 1000 });
    await claimsAt(a, [0, 500]);
    const types = async () => (await a.call("GET", "/v1/types")).body.results;
    expect(await types()).toEqual([
      {
        type: "t",
        counts: { active: 2, inactive: 2 },
        oldestWaitingMs: 500,
        paused: false,
        concurrency: null,
        rateLimit: { max: 3, perMs: 1000 },
        claimsInWindow: 2,
      },
    ]);
    a.clock.advance(500);
    expect((await types())[0].claimsInWindow).toBe(1);
    a.clock.advance(500);
    expect((await types())[0].claimsInWindow).toBe(0);
  });

  test("survives a restart, starts counted included; a field left out keeps it; null clears it", async () => {
    const clock = new ManualClock();
    const a = app({ clock });
    await queue(a, 6);
    await limit(a, { max: 2, perMs: 1000 });
    expect(await claimsAt(a, [0, 100])).toEqual([200, 200]);
    a.release();
    await a.close();
    const b = app({ dir: a.dir, clock });
    expect((await claim(b)).status).toBe(404);
    const kept = await b.call("PUT", "/v1/types/t", { paused: false, concurrency: 5 });
    expect(kept.body.results).toMatchObject({ rateLimit: { max: 2, perMs: 1000 }, concurrency: 5 });
    expect((await claim(b)).status).toBe(404);
    const cleared = await limit(b, null);
    expect(cleared.body.results).toMatchObject({ rateLimit: null, claimsInWindow: null });
    expect(await claimsAt(b, [150, 150, 150])).toEqual([200, 200, 200]);
  });

  test("bad limits are 400 naming the field, and change nothing", async () => {
    const a = app();
    await limit(a, { max: 4, perMs: 1000 });
    const cases: Array<[unknown, string]> = [
      [{ max: 0, perMs: 1000 }, "body.rateLimit.max"],
      [{ max: 1.5, perMs: 1000 }, "body.rateLimit.max"],
      [{ max: 1_000_001, perMs: 1000 }, "body.rateLimit.max"],
      [{ max: "10", perMs: 1000 }, "body.rateLimit.max"],
      [{ perMs: 1000 }, "body.rateLimit.max"],
      [{ max: 10 }, "body.rateLimit.perMs"],
      [{ max: 10, perMs: 0 }, "body.rateLimit.perMs"],
      [{ max: 10, perMs: 86_400_001 }, "body.rateLimit.perMs"],
      [{ max: 10, perMs: -5 }, "body.rateLimit.perMs"],
      [{ max: 10, perMs: null }, "body.rateLimit.perMs"],
      [5, "body.rateLimit"],
      ["fast", "body.rateLimit"],
      [[10, 1000], "body.rateLimit"],
    ];
    for (const [rateLimit, field] of cases) {
      const answer = await limit(a, rateLimit);
      expect(answer.status).toBe(400);
      expect(answer.body.message).toBe("Invalid request");
      expect(answer.body.error.startsWith(`${field}:`)).toBe(true);
    }
    const types = (await a.call("GET", "/v1/types")).body.results;
    expect(types[0].rateLimit).toEqual({ max: 4, perMs: 1000 });
    // The bounds themselves are taken; fields the limit does not name are ignored.
    const widest = await limit(a, { max: 1_000_000, perMs: 86_400_000, burst: 3 });
    expect(widest.body.results.rateLimit).toEqual({ max: 1_000_000, perMs: 86_400_000 });
    expect((await limit(a, { max: 1, perMs: 1 })).body.results.rateLimit).toEqual({
      max: 1,
      perMs: 1,
    });
  });

  test("metrics show each limit and count the claims it held back", async () => {
    const a = app();
    await queue(a, 3);
    await limit(a, { max: 1, perMs: 2500 });
    await claim(a);
    await claim(a);
    await a.call("POST", "/v1/errands/claim/t?count=5");
    const text = await (await a.app.handle(new Request("http://localhost/metrics"))).text();
    expect(text).toContain('errands_rate_limit_max{errand_type="t"} 1');
    expect(text).toContain('errands_rate_limit_window_seconds{errand_type="t"} 2.5');
    expect(text).toContain('errands_rate_limited_total{errand_type="t"} 2');
    await limit(a, null);
    const after = await (await a.app.handle(new Request("http://localhost/metrics"))).text();
    expect(after).not.toContain('errands_rate_limit_max{errand_type="t"}');
  });
});

/** The system's clock, where a test needs real time to pass (the clock a server runs on). */
class SystemClock extends ManualClock {
  override now(): number {
    return Date.now();
  }
}

describe("under load, in real time", () => {
  test("a limit of 10 per second holds under 64 workers: no window of 1000 ms starts more than 10", async () => {
    const clock = new SystemClock();
    const a = app({ clock });
    const total = 25;
    await queue(a, total);
    await limit(a, { max: 10, perMs: 1000 });
    // On PostgreSQL a second instance on the same schema (made once the first has made it)
    // shares the workers: the limit holds across instances.
    const instances = onPostgres ? [a, app({ dir: a.dir, clock })] : [a];
    const starts: number[] = [];
    const ids = new Set<string>();
    const byInstance = instances.map(() => 0);
    const worker = async (i: number) => {
      const at = i % instances.length;
      while (ids.size < total) {
        const answer = await held(instances[at] as TestApp, "/v1/errands/process/t?wait=1");
        if (answer.status === 404) continue;
        expect(answer.status).toBe(200);
        ids.add(answer.body.results.id);
        starts.push(answer.body.results.started);
        byInstance[at] = (byInstance[at] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, i) => worker(i)));
    expect(ids.size).toBe(total);
    expect(starts).toHaveLength(total);
    // Every instance claimed: the limit was shared, not held by one of them alone.
    for (const claimed of byInstance) expect(claimed).toBeGreaterThan(0);
    // The eleventh start after any start is a full window later, or more.
    starts.sort((x, y) => x - y);
    const tooClose = starts.filter(
      (s, i) => i + 10 < starts.length && (starts[i + 10] ?? 0) - s < 1000,
    );
    expect(tooClose).toEqual([]);
  }, 30_000);
});

// SQLite's query plans.
describe.skipIf(onPostgres)("cost", () => {
  test("the window is read from the log of starts by its key: a range, or one row", async () => {
    const a = app();
    await queue(a, 50);
    await limit(a, { max: 100, perMs: 1000 });
    await a.call("POST", "/v1/errands/claim/t?count=20");
    // No ANALYZE: a new store has no statistics, and the plans must hold without them.
    const now = a.clock.now();
    const statements = new WriteStatements(a.store.writer);
    const { firstInWindow } = statements.errandWrites;
    const take = statements.errandWrites.take(10);
    const { hold, pruneStarts } = new TypeWrites(a.store.writer);
    const { startsSince } = statements.types;
    take.all("t");
    firstInWindow.get("t", 1, 10, now - 1000);
    hold.get("t", now);
    pruneStarts.run("t", 10, now - 1000);
    startsSince.get("t", now - 1000);
    const planOf = (statement: unknown) =>
      a.store.writer
        .query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${(statement as Statement).toString()}`)
        .all()
        .map((row) => row.detail);
    const plans: Array<[unknown, string[]]> = [
      // The claim walks its own index, and reads the starts it needs by their numbers.
      [take, ["INDEX errands_claim"]],
      [firstInWindow, ["claim_starts USING PRIMARY KEY (type=? AND seq>? AND seq<?)"]],
      [hold, ["s USING PRIMARY KEY (type=? AND seq=?)"]],
      [pruneStarts, ["claim_starts USING PRIMARY KEY (type=? AND seq<?)"]],
      [startsSince, ["claim_starts USING PRIMARY KEY (type=?)"]],
    ];
    for (const [statement, steps] of plans) {
      const plan = planOf(statement);
      for (const step of steps) expect(plan.some((line) => line.includes(step))).toBe(true);
      expect(plan.filter((line) => /^SCAN /.test(line))).toEqual([]);
    }
  });
});

describe.skipIf(!onPostgres)("cost on PostgreSQL", () => {
  test("the window's count reads the log of starts by its key, one range per claim", async () => {
    const a = app();
    await queue(a, 50);
    await limit(a, { max: 100, perMs: 1000 });
    await a.call("POST", "/v1/errands/claim/t?count=20");
    await withExplainedTx(a, async (tx, plansOf) => {
      const now = a.clock.now();
      const cases: Array<[() => Promise<unknown>, string[]]> = [
        [
          () => tx.nextClaimables("t", 10, now).then(() => tx.drain()),
          ["claim_starts_pkey", "errands_claim"],
        ],
        [() => tx.rateLimitHold("t", now), ["claim_starts_pkey"]],
        [() => tx.claimStartsSince("t", now - 1000), ["claim_starts_pkey"]],
      ];
      for (const [run, indexes] of cases) {
        const plan = await plansOf(run);
        for (const index of indexes) expect(plan).toMatch(new RegExp(`(using|on) ${index} `));
        expect(plan).not.toMatch(/Seq Scan on (errands|claim_starts)\b/);
      }
    });
  });
});
