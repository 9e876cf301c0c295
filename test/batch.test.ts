// Batch claims and acks for busy workers: POST /v1/errands/claim/:type?count=N takes many
// errands in one transaction, POST /v1/errands/ack completes or fails many in one.

import type { Statement } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { WriteStatements } from "../src/store/sqlite/access.ts";
import {
  type Answer,
  appsPerTest,
  fsyncGate,
  onPostgres,
  type TestApp,
  withExplainedTx,
} from "./harness.ts";
import { eventually } from "./sse.ts";

const app = appsPerTest();

interface Errand {
  id: string;
  name: string;
  status: string;
  attempts: number;
  logs?: Array<{ message: string }>;
  dependencyResults?: Record<string, unknown>;
}

async function create(a: TestApp, name: string, options: Record<string, unknown> = {}, type = "t") {
  const answer = await a.call("POST", "/v1/errands", { name, type, options });
  expect(answer.status).toBe(200);
  return answer.body.results as Errand;
}

/** Creates errands named by `names` with those priorities, in one transaction. */
async function createAll(a: TestApp, specs: Array<[string, number]>, type = "t") {
  const errands = specs.map(([name, priority]) => ({ name, type, options: { priority } }));
  const answer = await a.call("POST", "/v1/errands/batch", { errands });
  expect(answer.status).toBe(200);
  return answer.body.results as Errand[];
}

async function claimMany(a: TestApp, type: string, query = "") {
  const answer = await a.call("POST", `/v1/errands/claim/${type}${query}`);
  expect(answer.status).toBe(200);
  return answer.body.results as Errand[];
}

/** A batch claim sent as a client sends it, which the test may abandon. */
function claimHeld(a: TestApp, type: string, query: string, signal?: AbortSignal) {
  const init: RequestInit = { method: "POST" };
  if (signal) init.signal = signal;
  return a.app
    .handle(new Request(`http://localhost/v1/errands/claim/${type}${query}`, init))
    .then(async (res) => ({ status: res.status, body: (await res.json()) as Answer["body"] }));
}

/** A single long-poll claim, as in longpoll.test.ts. */
function claimOneHeld(a: TestApp, type: string, wait: number) {
  return a.app
    .handle(
      new Request(`http://localhost/v1/errands/process/${type}?wait=${wait}`, { method: "POST" }),
    )
    .then(async (res) => ({ status: res.status, body: (await res.json()) as Answer["body"] }));
}

const names = (errands: Errand[]) => errands.map((e) => e.name);

const get = async (a: TestApp, id: string) =>
  (await a.call("GET", `/v1/errand/${id}`)).body.results as Errand;

/** The events this app hears from now on (those before all heard first), as `event name`. */
async function heard(a: TestApp): Promise<string[]> {
  await a.eventsHeard();
  const events: string[] = [];
  a.bus.subscribe((event) => {
    events.push(`${event.event} ${(event.errand as Errand).name}`);
  });
  return events;
}

describe("batch claim", () => {
  test("takes up to `count` errands, highest priority first, each changed as a single claim changes it", async () => {
    const a = app();
    await createAll(a, [
      ["low", 1],
      ["top", 9],
      ["mid", 5],
      ["high", 7],
      ["none", 0],
    ]);
    await create(a, "other type", { priority: 100 }, "u");
    const events = await heard(a);
    a.clock.advance(5000);
    const first = await claimMany(a, "t", "?count=3");
    expect(names(first)).toEqual(["top", "high", "mid"]);
    for (const e of first) {
      expect(e).toMatchObject({ status: "active", attempts: 1, started: a.clock.now() });
      expect(e.logs?.map((l) => l.message)).toEqual(["Started!"]);
      expect(await get(a, e.id)).toEqual(e);
    }
    await a.eventsHeard();
    expect(events).toEqual(["processing top", "processing high", "processing mid"]);
    expect(names(await claimMany(a, "t", "?count=100"))).toEqual(["low", "none"]);
    expect(await claimMany(a, "t", "?count=100")).toEqual([]);
    expect(names(await claimMany(a, "u", "?count=2"))).toEqual(["other type"]);
  });

  test("takes errands in the same order as single claims do", async () => {
    const specs: Array<[string, number]> = Array.from({ length: 12 }, (_, i) => [
      `e${i}`,
      (i * 7) % 4,
    ]);
    const singles = app();
    const batches = app();
    for (const a of [singles, batches]) {
      for (const spec of specs) {
        await createAll(a, [spec]);
        a.clock.advance(1000);
      }
    }
    const one: string[] = [];
    for (let i = 0; i < specs.length; i++) {
      one.push((await singles.call("POST", "/v1/errands/process/t")).body.results.name);
    }
    const many: string[] = [];
    for (const count of [5, 1, 4, 10])
      many.push(...names(await claimMany(batches, "t", `?count=${count}`)));
    expect(many).toEqual(one);
  });

  test("count is 1 when not given, and must be a whole number from 1 to 100", async () => {
    const a = app();
    await createAll(a, [
      ["a", 0],
      ["b", 0],
    ]);
    for (const count of ["0", "101", "1.5", "-1", "many", ""]) {
      const answer = await a.call("POST", `/v1/errands/claim/t?count=${count}`);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toContain("count");
    }
    for (const wait of ["0", "61", "soon"]) {
      const answer = await a.call("POST", `/v1/errands/claim/t?count=2&wait=${wait}`);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toContain("wait");
    }
    expect(await claimMany(a, "t")).toHaveLength(1);
    expect(await claimMany(a, "t", "?count=100")).toHaveLength(1);
  });

  test("takes its errands in one transaction", async () => {
    const a = app();
    await createAll(
      a,
      Array.from({ length: 20 }, (_, i) => [`e${i}`, 0]),
    );
    const before = a.commits();
    expect(await claimMany(a, "t", "?count=20")).toHaveLength(20);
    expect(a.commits() - before).toBe(1);
  });

  test("a paused type answers [], and a batch waiting on it is served once it is resumed", async () => {
    const a = app();
    await createAll(a, [
      ["a", 0],
      ["b", 0],
      ["c", 0],
    ]);
    expect((await a.call("PUT", "/v1/types/t", { paused: true })).status).toBe(200);
    expect(await claimMany(a, "t", "?count=5")).toEqual([]);
    const waiting = claimHeld(a, "t", "?count=2&wait=30");
    await eventually(() => a.waiters.count === 1);
    expect((await a.call("PUT", "/v1/types/t", { paused: false })).status).toBe(200);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(names(answer.body.results)).toEqual(["a", "b"]);
  });

  test("with a concurrency limit of 3, a claim of 10 takes 3, and one more as a slot frees", async () => {
    const a = app();
    await createAll(
      a,
      Array.from({ length: 10 }, (_, i) => [`e${i}`, 0]),
    );
    expect((await a.call("PUT", "/v1/types/t", { concurrency: 3 })).status).toBe(200);
    const first = await claimMany(a, "t", "?count=10");
    expect(names(first)).toEqual(["e0", "e1", "e2"]);
    expect(await claimMany(a, "t", "?count=10")).toEqual([]);
    const done = await a.call("PUT", `/v1/errand/${first[0]?.id}/completed`, {});
    expect(done.status).toBe(200);
    expect(names(await claimMany(a, "t", "?count=10"))).toEqual(["e3"]);
    const active = await a.call("GET", "/v1/errands/list/status/active");
    expect(active.body.results).toHaveLength(3);
  });

  test("with wait, it is answered as errands are created, taking several at once", async () => {
    const a = app();
    const waiting = claimHeld(a, "t", "?count=3&wait=30");
    await eventually(() => a.waiters.count === 1);
    await createAll(a, [
      ["p1", 1],
      ["p5", 5],
      ["p3", 3],
      ["p4", 4],
      ["p2", 2],
    ]);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(names(answer.body.results)).toEqual(["p5", "p4", "p3"]);
    for (const e of answer.body.results as Errand[]) expect(e.status).toBe("active");
    expect(a.waiters.count).toBe(0);
    expect(names(await claimMany(a, "t", "?count=10"))).toEqual(["p2", "p1"]);
  });

  test("with wait, an errand already queued is answered at once", async () => {
    const a = app();
    await create(a, "ready");
    const answer = await claimHeld(a, "t", "?count=4&wait=30");
    expect(names(answer.body.results)).toEqual(["ready"]);
    expect(a.waiters.count).toBe(0);
  });

  test("a wait that runs out answers 200 with no errands", async () => {
    const a = app();
    const answer = await claimHeld(a, "t", "?count=5&wait=0.05");
    expect(answer).toEqual({ status: 200, body: { status: "OK", results: [] } });
    expect(a.waiters.count).toBe(0);
  });

  test("single and batch waiters are served in the order they came, neither starving the other", async () => {
    const a = app();
    const first = claimOneHeld(a, "t", 30);
    await eventually(() => a.waiters.count === 1);
    const batch = claimHeld(a, "t", "?count=3&wait=30");
    await eventually(() => a.waiters.count === 2);
    const last = claimOneHeld(a, "t", 30);
    await eventually(() => a.waiters.count === 3);
    await createAll(a, [
      ["e1", 9],
      ["e2", 8],
      ["e3", 7],
      ["e4", 6],
      ["e5", 5],
      ["e6", 4],
    ]);
    expect((await first).body.results.name).toBe("e1");
    expect(names((await batch).body.results)).toEqual(["e2", "e3", "e4"]);
    expect((await last).body.results.name).toBe("e5");
    expect(names(await claimMany(a, "t", "?count=10"))).toEqual(["e6"]);
  });

  test("a batch waiter in front takes what comes, and the single waiter behind it gets the next", async () => {
    const a = app();
    const batch = claimHeld(a, "t", "?count=5&wait=30");
    await eventually(() => a.waiters.count === 1);
    const single = claimOneHeld(a, "t", 30);
    await eventually(() => a.waiters.count === 2);
    await create(a, "first");
    expect(names((await batch).body.results)).toEqual(["first"]);
    expect(a.waiters.count).toBe(1);
    await create(a, "second");
    expect((await single).body.results.name).toBe("second");
  });

  test("a batch whose client goes away after its errands were claimed gives them all back", async () => {
    const a = app();
    const gone = new AbortController();
    const abandoned = claimHeld(a, "t", "?count=3&wait=30", gone.signal).catch(() => null);
    await eventually(() => a.waiters.count === 1);
    // The client leaves in the moment between its claim and the commit that holds it.
    const claimManyStaged = a.errands.claimManyStaged.bind(a.errands);
    a.errands.claimManyStaged = async (type: string, count: number) => {
      const staged = await claimManyStaged(type, count);
      if (staged.result.length > 0) gone.abort();
      return staged;
    };
    const created = await createAll(a, [
      ["a", 3],
      ["b", 2],
      ["c", 1],
    ]);
    await abandoned;
    for (const e of created) {
      await eventually(async () => (await get(a, e.id)).status === "inactive");
      const back = await get(a, e.id);
      expect(back.attempts).toBe(0);
      expect(back.logs?.at(-1)?.message).toBe("Released: the claiming worker went away");
    }
    expect(names(await claimMany(a, "t", "?count=3"))).toEqual(["a", "b", "c"]);
  });

  // Holds back the SQLite engine's fsync (on PostgreSQL a commit is durable when it returns).
  test.skipIf(onPostgres)(
    "a client that leaves before its batch is on disk: every errand goes back to the queue",
    async () => {
      const sync = fsyncGate();
      const a = app({ flush: sync.flush });
      const created = await createAll(a, [
        ["a", 0],
        ["b", 0],
      ]);
      sync.hold();
      const gone = new AbortController();
      const claiming = claimHeld(a, "t", "?count=2", gone.signal).catch(() => null);
      await eventually(() => sync.count === 1);
      gone.abort();
      sync.releaseAll();
      await claiming;
      for (const e of created) {
        await eventually(async () => (await get(a, e.id)).status === "inactive");
        expect((await get(a, e.id)).attempts).toBe(0);
      }
    },
  );
});

describe("ack", () => {
  /** Errands created and claimed: each active at attempt 1. */
  async function claimed(a: TestApp, specs: Array<[string, Record<string, unknown>]>) {
    for (const [name, options] of specs) await create(a, name, options);
    const errands = await claimMany(a, "t", `?count=${specs.length}`);
    expect(errands).toHaveLength(specs.length);
    return (name: string): Errand => {
      const found = errands.find((e) => e.name === name);
      if (!found) throw new Error(`${name} was not claimed`);
      return found;
    };
  }

  async function ack(a: TestApp, items: unknown[]) {
    const answer = await a.call("POST", "/v1/errands/ack", { items });
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("OK");
    return answer.body.results as Array<{
      id: string;
      status: number;
      errand?: Errand & Record<string, unknown>;
      error?: { message: string; error: string };
    }>;
  }

  test("completed, failed, a superseded attempt and an unknown id in one list: each answered in order, only the good ones applied", async () => {
    const a = app();
    const e = await claimed(a, [
      ["done", {}],
      ["retried", { retries: 2 }],
      ["backoff", { retries: 1, backoff: { type: "fixed", delay: 60_000 } }],
      ["failed", {}],
      ["stale", {}],
    ]);
    // "stale" is retried and claimed again: attempt 1 is superseded.
    await a.call("POST", `/v1/errand/${e("stale").id}/retry`);
    expect((await claimMany(a, "t")).map((x) => x.attempts)).toEqual([2]);
    const staleBefore = await get(a, e("stale").id);
    const events = await heard(a);
    a.clock.advance(1000);
    const unknown = "01900000-0000-7000-8000-000000000000";
    const results = await ack(a, [
      { id: e("done").id, attempt: 1, completed: { results: { rows: 42 } } },
      { id: e("retried").id, attempt: 1, failed: { reason: "flaky" } },
      { id: unknown, completed: {} },
      { id: e("stale").id, attempt: 1, completed: { results: { late: true } } },
      { id: e("backoff").id, failed: { reason: "busy" } },
      { id: e("failed").id, attempt: 1, failed: { reason: "broken" } },
    ]);
    expect(results.map((r) => [r.id, r.status])).toEqual([
      [e("done").id, 200],
      [e("retried").id, 200],
      [unknown, 404],
      [e("stale").id, 409],
      [e("backoff").id, 200],
      [e("failed").id, 200],
    ]);
    const [done, retried, missing, stale, backoff, failed] = results;
    expect(done?.errand).toMatchObject({
      status: "completed",
      progress: 100,
      results: { rows: 42 },
      completed: a.clock.now(),
    });
    expect(done?.errand?.logs?.at(-1)?.message).toBe("Completed!");
    expect(retried?.errand).toMatchObject({ status: "inactive", failed: a.clock.now() });
    expect(retried?.errand?.logs?.at(-1)?.message).toBe("flaky");
    expect(missing?.error?.message).toBe("Errand not found");
    expect(stale?.error?.message).toBe("Attempt superseded");
    expect(backoff?.errand).toMatchObject({ status: "scheduled" });
    expect(failed?.errand).toMatchObject({ status: "failed" });
    for (const r of results) {
      if (r.errand) expect(await get(a, r.id)).toEqual(r.errand as Errand);
    }
    expect(await get(a, e("stale").id)).toEqual(staleBefore);
    await a.eventsHeard();
    expect(events).toEqual(["completed done", "failed retried", "failed backoff", "failed failed"]);
    // The errand failed with retries left is queued again.
    expect(names(await claimMany(a, "t", "?count=10"))).toEqual(["retried"]);
  });

  test("an errand named twice in one list: the second item is 409 and changes nothing", async () => {
    const a = app();
    const e = await claimed(a, [["once", { retries: 3 }]]);
    const results = await ack(a, [
      { id: e("once").id, failed: { reason: "first" } },
      { id: e("once").id, failed: { reason: "second" } },
      { id: e("once").id, completed: {} },
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 409, 409]);
    expect(results[1]?.error?.message).toBe("Errand named twice");
    const after = await get(a, e("once").id);
    expect(after.status).toBe("inactive");
    expect(after.logs?.map((l) => l.message)).toEqual(["Started!", "first"]);
  });

  test("a blocked errand in the list is 409, the others stand", async () => {
    const a = app();
    const made = await a.call("POST", "/v1/pipeline", {
      name: "p",
      errands: [
        { name: "first", type: "t" },
        { name: "then", type: "t" },
      ],
      dependencies: [{ target: "then", dependsOn: "first" }],
    });
    const [first, then] = made.body.results.errands as Errand[];
    const results = await ack(a, [
      { id: then?.id, completed: {} },
      { id: first?.id, failed: { reason: "by hand" } },
    ]);
    expect(results.map((r) => r.status)).toEqual([409, 200]);
    expect(results[0]?.error?.message).toBe("Cannot complete a blocked errand");
    expect((await get(a, then?.id ?? "")).status).toBe("blocked");
    expect((await get(a, first?.id ?? "")).status).toBe("failed");
  });

  test("completions of pipeline errands unblock their dependents, which claim their results", async () => {
    const a = app();
    const made = await a.call("POST", "/v1/pipeline", {
      name: "fan-in",
      errands: [
        { name: "left", type: "step" },
        { name: "right", type: "step" },
        { name: "join", type: "final" },
      ],
      dependencies: [
        { target: "join", dependsOn: "left" },
        { target: "join", dependsOn: "right" },
      ],
    });
    const pipelineId = made.body.results.id;
    const steps = await claimMany(a, "step", "?count=2");
    expect(names(steps).sort()).toEqual(["left", "right"]);
    const events = await heard(a);
    const results = await ack(
      a,
      steps.map((s) => ({ id: s.id, attempt: 1, completed: { results: { from: s.name } } })),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    await a.eventsHeard();
    expect(events.filter((e) => e.startsWith("unblocked"))).toEqual(["unblocked join"]);
    const [join] = await claimMany(a, "final", "?count=5");
    expect(join?.name).toBe("join");
    expect(join?.dependencyResults).toEqual({ left: { from: "left" }, right: { from: "right" } });
    const done = await ack(a, [{ id: join?.id, attempt: 1, completed: {} }]);
    expect(done[0]?.status).toBe(200);
    const pipeline = await a.call("GET", `/v1/pipeline/${pipelineId}`);
    expect(pipeline.body.results.status).toBe("completed");
  });

  test("a pipeline deleted on completion by one item makes a later item of the list 404", async () => {
    const a = app();
    const made = await a.call("POST", "/v1/pipeline", {
      name: "gone",
      deleteOnCompleted: true,
      errands: [
        { name: "x", type: "t" },
        { name: "y", type: "t" },
      ],
    });
    const [x, y] = made.body.results.errands as Errand[];
    await ack(a, [{ id: x?.id, completed: {} }]);
    // y completes the pipeline, which goes with its errands; x, named after it, is gone too.
    const results = await ack(a, [
      { id: y?.id, completed: {} },
      { id: x?.id, completed: {} },
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 404]);
    expect((await a.call("GET", `/v1/pipeline/${made.body.results.id}`)).status).toBe(404);
  });

  test("deleteOnCompleted: the item answers the completed errand, which is then deleted", async () => {
    const a = app();
    const e = await claimed(a, [["brief", { deleteOnCompleted: true }]]);
    const events = await heard(a);
    const results = await ack(a, [{ id: e("brief").id, completed: { results: { ok: 1 } } }]);
    expect(results[0]?.errand).toMatchObject({ status: "completed", results: { ok: 1 } });
    expect((await a.call("GET", `/v1/errand/${e("brief").id}`)).status).toBe(404);
    await a.eventsHeard();
    expect(events).toEqual(["completed brief", "deleted brief"]);
  });

  test("an ack of many items is one transaction", async () => {
    const a = app();
    await createAll(
      a,
      Array.from({ length: 50 }, (_, i) => [`e${i}`, 0]),
    );
    const errands = await claimMany(a, "t", "?count=50");
    const before = a.commits();
    const results = await ack(
      a,
      errands.map((e, i) =>
        i % 2 === 0 ? { id: e.id, completed: {} } : { id: e.id, failed: { reason: "odd" } },
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(a.commits() - before).toBe(1);
    const counts = (await a.call("GET", "/v1/types")).body.results[0].counts;
    expect(counts).toEqual({ completed: 25, failed: 25 });
  });

  test("a malformed body is 400 naming the field, and changes nothing", async () => {
    const a = app();
    const e = await claimed(a, [["kept", {}]]);
    const id = e("kept").id;
    const cases: Array<[unknown, string]> = [
      [{}, "body.items"],
      [{ items: [] }, "body.items"],
      [{ items: "all" }, "body.items"],
      [{ items: [{ completed: {} }] }, "body.items.0.id"],
      [{ items: [{ id: 7, completed: {} }] }, "body.items.0.id"],
      [{ items: [{ id, completed: {} }, { id }] }, "body.items.1"],
      [{ items: [{ id, completed: {}, failed: { reason: "both" } }] }, "body.items.0"],
      [{ items: [{ id, failed: {} }] }, "body.items.0.failed.reason"],
      [{ items: [{ id, completed: { results: [1] } }] }, "body.items.0.completed.results"],
      [{ items: [{ id, attempt: 0, completed: {} }] }, "body.items.0.attempt"],
      [{ items: [{ id, completed: [] }] }, "body.items.0.completed"],
      [{ items: Array.from({ length: 1001 }, () => ({ id, completed: {} })) }, "body.items"],
    ];
    for (const [body, field] of cases) {
      const answer = await a.call("POST", "/v1/errands/ack", body);
      expect({ body, status: answer.status }).toEqual({ body, status: 400 });
      expect(answer.body.error).toStartWith(`${field}:`);
    }
    expect((await a.call("POST", "/v1/errands/ack", "[1,")).status).toBe(400);
    const after = await get(a, id ?? "");
    expect(after.status).toBe("active");
    expect(after.logs?.map((l) => l.message)).toEqual(["Started!"]);
  });
});

// SQLite's query plans.
describe.skipIf(onPostgres)("cost", () => {
  test("a batch claim and an ack's locks read an index, never a whole table", async () => {
    const a = app();
    const specs = Array.from({ length: 200 }, (_, i) => ({ name: `e${i}`, type: `t${i % 4}` }));
    const created = (await a.call("POST", "/v1/errands/batch", { errands: specs })).body.results;
    await claimMany(a, "t1", "?count=10");
    await a.call("PUT", "/v1/types/t2", { concurrency: 100 });
    const sql = new WriteStatements(a.store.writer).errandWrites;
    sql.take(50).all("t2");
    sql.activeCount.get("t2");
    sql.byIds.all(JSON.stringify(created.slice(0, 20).map((e: Errand) => e.id)));
    const planOf = (statement: Statement) =>
      a.store.writer
        .query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${statement.toString()}`)
        .all()
        .map((row) => row.detail);
    const plans: Array<[Statement, string]> = [
      [sql.take(50) as unknown as Statement, "errands_claim"],
      [sql.activeCount as unknown as Statement, "errands_active"],
      [sql.byIds as unknown as Statement, "sqlite_autoindex_errands_1"],
    ];
    for (const [statement, index] of plans) {
      const plan = planOf(statement);
      expect(plan.some((step) => step.includes(`INDEX ${index}`))).toBe(true);
      expect(plan.filter((step) => /^SCAN errands\b(?! USING)/.test(step))).toEqual([]);
    }
  });
});

describe.skipIf(!onPostgres)("cost on PostgreSQL", () => {
  test("a batch claim and an ack's locks each have an index to read, never a whole table", async () => {
    const a = app();
    const specs = Array.from({ length: 200 }, (_, i) => ({ name: `e${i}`, type: `t${i % 4}` }));
    const created = (await a.call("POST", "/v1/errands/batch", { errands: specs })).body.results;
    await claimMany(a, "t1", "?count=10");
    await a.call("PUT", "/v1/types/t2", { concurrency: 100 });
    await withExplainedTx(a, async (tx, plansOf) => {
      const ids = created.slice(0, 20).map((e: Errand) => e.id);
      const cases: Array<[() => Promise<unknown>, string[]]> = [
        [() => tx.nextClaimables("t0", 10, a.clock.now()), ["errands_claim"]],
        [() => tx.nextClaimables("t2", 10, a.clock.now()), ["errands_active", "errands_claim"]],
        [() => tx.lockErrands(ids), ["errands_pkey"]],
      ];
      for (const [run, indexes] of cases) {
        const plan = await plansOf(run);
        for (const index of indexes) expect(plan).toMatch(new RegExp(`(using|on) ${index} `));
        expect(plan).not.toMatch(/Seq Scan on errands\b/);
      }
    });
  });
});
