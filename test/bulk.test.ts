// Bulk retry and delete (README, Decisions: bulk actions) as a dashboard's client sees them: by
// ids or by a filter a batch at a time, the single-errand rules and events, the `next` loop,
// one transaction per request, and the 400s.

import { describe, expect, test } from "bun:test";
import type { ErrandEvent } from "../src/events/bus.ts";
import { type Answer, appsPerTest, onPostgres, onSchema, type TestApp } from "./harness.ts";

const app = appsPerTest();

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = any;

/** An id no errand has. */
const UNKNOWN = "01900000-0000-7000-8000-000000000000";

async function create(a: TestApp, spec: Record<string, unknown> = {}): Promise<Json> {
  const answer = await a.call("POST", "/v1/errands", { name: "e", type: "t", ...spec });
  expect(answer.status).toBe(200);
  return answer.body.results;
}

/** `n` errands of a type, created in one batch; their ids in creation (id) order. */
async function createMany(a: TestApp, n: number, type: string): Promise<string[]> {
  const ids: string[] = [];
  for (let done = 0; done < n; done += 1000) {
    const errands = Array.from({ length: Math.min(1000, n - done) }, (_, i) => ({
      name: `${type}-${done + i}`,
      type,
    }));
    const answer = await a.call("POST", "/v1/errands/batch", { errands });
    expect(answer.status).toBe(200);
    ids.push(...answer.body.results.map((e: { id: string }) => e.id));
  }
  return ids;
}

/** An errand failed by its worker (from inactive: any state but blocked may fail). */
async function failed(a: TestApp, spec: Record<string, unknown> = {}): Promise<Json> {
  const e = await create(a, spec);
  const answer = await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "boom" });
  expect(answer.body.results.status).toBe("failed");
  return answer.body.results;
}

async function get(a: TestApp, id: string): Promise<Json> {
  return (await a.call("GET", `/v1/errand/${id}`)).body.results;
}

/** The events heard from now on (those of earlier writes first reach their listeners). */
async function record(a: TestApp): Promise<ErrandEvent<Json>[]> {
  await a.eventsHeard();
  const events: ErrandEvent<Json>[] = [];
  a.bus.subscribe((event) => events.push(event as ErrandEvent<Json>));
  return events;
}

/** The ids of the events of one name, once every committed event has been heard. */
async function idsOf(a: TestApp, events: ErrandEvent<Json>[], name: string): Promise<string[]> {
  await a.eventsHeard();
  return events.filter((e) => e.event === name).map((e) => e.errand.id);
}

function ok(answer: Answer, count: number, skipped: number, next: string | null = null) {
  expect(answer.status).toBe(200);
  expect(answer.body).toEqual({ status: "OK", count, skipped, next });
}

describe("bulk retry", () => {
  test("by ids: each errand the retry rule takes is queued with its event; the others and unknown ids are skipped", async () => {
    const a = app();
    const one = await failed(a);
    const done = await create(a);
    await a.call("PUT", `/v1/errand/${done.id}/completed`, {});
    const waiting = await create(a);
    const two = await failed(a);
    const events = await record(a);

    const answer = await a.call("POST", "/v1/errands/retry", {
      ids: [one.id, done.id, waiting.id, UNKNOWN, two.id],
    });
    ok(answer, 3, 2);
    for (const id of [one.id, done.id, two.id]) {
      const e = await get(a, id);
      expect(e).toMatchObject({ status: "inactive", progress: 0 });
      expect(e.logs.at(-1)).toMatchObject({ severity: "INFO", message: "Retrying!" });
    }
    const untouched = await get(a, waiting.id);
    expect(untouched.status).toBe("inactive");
    expect(untouched.logs).toBeUndefined();
    expect((await idsOf(a, events, "retry")).sort()).toEqual([one.id, done.id, two.id].sort());
    expect(events.map((e) => e.event)).toEqual(["retry", "retry", "retry"]);
  });

  test("by filter: only the failed errands of one type are retried", async () => {
    const a = app();
    const wanted = [await failed(a, { type: "a" }), await failed(a, { type: "a" })];
    const otherType = await failed(a, { type: "b" });
    const completedA = await create(a, { type: "a" });
    await a.call("PUT", `/v1/errand/${completedA.id}/completed`, {});
    wanted.push(await failed(a, { type: "a" }));
    const events = await record(a);

    const answer = await a.call("POST", "/v1/errands/retry", {
      filter: { status: "failed", type: "a" },
    });
    ok(answer, 3, 0);
    for (const e of wanted) expect((await get(a, e.id)).status).toBe("inactive");
    expect((await get(a, otherType.id)).status).toBe("failed");
    expect((await get(a, completedA.id)).status).toBe("completed");
    expect(await idsOf(a, events, "retry")).toEqual(wanted.map((e) => e.id));
    // Nothing left to match.
    ok(
      await a.call("POST", "/v1/errands/retry", { filter: { status: "failed", type: "a" } }),
      0,
      0,
    );
  });

  test("an errand of a pipeline is retried exactly as by its own route, its pipeline following", async () => {
    const a = app();
    const spec = (name: string) => ({
      name,
      errands: [
        { name: "A", type: `first-${name}` },
        { name: "B", type: `second-${name}` },
      ],
      dependencies: [{ target: "B", dependsOn: "A" }],
    });
    const made = [];
    for (const name of ["one", "two"]) {
      const p = (await a.call("POST", "/v1/pipeline/", spec(name))).body.results;
      const claimed = await a.call("POST", `/v1/errands/process/first-${name}`);
      await a.call("PUT", `/v1/errand/${claimed.body.results.id}/failed`, { reason: "no" });
      made.push(p);
    }
    const [one, two] = made;
    const [a1, b1] = one.errands;
    const [a2, b2] = two.errands;
    expect((await a.call("GET", `/v1/pipeline/${one.id}`)).body.results.status).toBe("failed");

    expect((await a.call("POST", `/v1/errand/${a1.id}/retry`)).status).toBe(200);
    // B is blocked: the single route refuses it (409), the bulk one skips it.
    expect((await a.call("POST", `/v1/errand/${b1.id}/retry`)).status).toBe(409);
    ok(await a.call("POST", "/v1/errands/retry", { ids: [a2.id, b2.id] }), 1, 1);

    const single = (await a.call("GET", `/v1/pipeline/${one.id}`)).body.results;
    const bulk = (await a.call("GET", `/v1/pipeline/${two.id}`)).body.results;
    expect(bulk.status).toBe(single.status);
    expect(bulk.status).not.toBe("failed");
    const shape = (p: Json) =>
      p.errands.map((e: Json) => ({
        status: e.status,
        attempts: e.attempts,
        logs: (e.logs ?? []).map((l: Json) => l.message),
      }));
    expect(shape(bulk)).toEqual(shape(single));
  });
});

describe("bulk delete", () => {
  test("by filter: errands of a pipeline are skipped, the others deleted with a deleted event each", async () => {
    const a = app();
    const lone = [await create(a, { type: "x" }), await create(a, { type: "x" })];
    const p = (
      await a.call("POST", "/v1/pipeline/", {
        name: "p",
        errands: [
          { name: "A", type: "x" },
          { name: "B", type: "x" },
        ],
        dependencies: [{ target: "B", dependsOn: "A" }],
      })
    ).body.results;
    lone.push(await create(a, { type: "x" }));
    const otherType = await create(a, { type: "y" });
    const events = await record(a);

    ok(await a.call("POST", "/v1/errands/delete", { filter: { type: "x" } }), 3, 2);
    for (const e of lone) expect((await a.call("GET", `/v1/errand/${e.id}`)).status).toBe(404);
    expect(await idsOf(a, events, "deleted")).toEqual(lone.map((e) => e.id));
    const kept = (await a.call("GET", `/v1/pipeline/${p.id}`)).body.results;
    expect(kept.errands.map((e: Json) => e.status)).toEqual(["inactive", "blocked"]);
    expect((await get(a, otherType.id)).status).toBe("inactive");
    // The single route says why it refuses them.
    expect((await a.call("DELETE", `/v1/errand/${p.errands[0].id}`)).status).toBe(409);
  });

  test("by ids: unknown ids are skipped and an id sent twice counts once", async () => {
    const a = app();
    const [x, y, z] = [await create(a), await create(a), await create(a)];
    const events = await record(a);
    ok(await a.call("POST", "/v1/errands/delete", { ids: [y.id, UNKNOWN, x.id, y.id] }), 2, 1);
    expect((await a.call("GET", "/v1/errands")).body.results.map((e: Json) => e.id)).toEqual([
      z.id,
    ]);
    expect((await idsOf(a, events, "deleted")).sort()).toEqual([x.id, y.id].sort());
  });

  test("an empty filter takes every errand", async () => {
    const a = app();
    await failed(a, { type: "a" });
    await create(a, { type: "b" });
    await create(a, { type: "c" });
    // Retry takes only the failed one; delete takes all three.
    ok(await a.call("POST", "/v1/errands/retry", { filter: {} }), 1, 2);
    ok(await a.call("POST", "/v1/errands/delete", { filter: {} }), 3, 0);
    expect((await a.call("GET", "/v1/errands")).body.results).toEqual([]);
  });
});

describe("the next loop", () => {
  /** Sends the same filter, passing each `next` as `after`, until it is null. */
  async function loop(a: TestApp, route: string, filter: Record<string, string>) {
    const answers: Array<{ count: number; skipped: number; next: string | null }> = [];
    let after: string | undefined;
    do {
      const answer = await a.call("POST", route, { filter, ...(after ? { after } : {}) });
      expect(answer.status).toBe(200);
      const { status, ...rest } = answer.body;
      answers.push(rest);
      after = rest.next ?? undefined;
      expect(answers.length).toBeLessThan(10);
    } while (after !== undefined);
    return answers;
  }

  test("2,300 matching: three requests, each errand examined once, the skipped ones included", async () => {
    const a = app();
    const many = await createMany(a, 1200, "many");
    await createMany(a, 5, "other");
    many.push(...(await createMany(a, 1100, "many")));
    const all = await a.call("POST", "/v1/errands/update/status/inactive", { status: "failed" });
    expect(all.body.count).toBe(2305);
    // Queued again already: the bulk retry's rule refuses these.
    const queued = [0, 999, 1000, 1777, 2299].map((i) => many[i] ?? "");
    ok(await a.call("POST", "/v1/errands/retry", { ids: queued }), 5, 0);
    const events = await record(a);

    const answers = await loop(a, "/v1/errands/retry", { type: "many" });
    expect(answers).toEqual([
      { count: 998, skipped: 2, next: many[999] ?? "" },
      { count: 998, skipped: 2, next: many[1999] ?? "" },
      { count: 299, skipped: 1, next: null },
    ]);
    const retried = await idsOf(a, events, "retry");
    expect(retried).toEqual(many.filter((id) => !queued.includes(id)));
    expect(new Set(retried).size).toBe(retried.length);
    const failedLeft = await a.call("GET", "/v1/errands?status=failed");
    expect(failedLeft.body.results.map((e: Json) => e.type)).toEqual(Array(5).fill("other"));

    // Errands that stop matching as they are changed: the cursor still moves past them.
    await a.call("POST", "/v1/errands/update/type/many", { status: "failed" });
    const deleted = await loop(a, "/v1/errands/delete", { status: "failed", type: "many" });
    expect(deleted.map((answer) => answer.count)).toEqual([1000, 1000, 300]);
    expect((await a.call("GET", "/v1/errands?type=many")).body.results).toEqual([]);
  }, 120_000);

  test("exactly 1000 matching: one request, and next is null", async () => {
    const a = app();
    await createMany(a, 1000, "k");
    await createMany(a, 1, "later");
    expect(await loop(a, "/v1/errands/delete", { type: "k" })).toEqual([
      { count: 1000, skipped: 0, next: null },
    ]);
  }, 60_000);
});

describe("one transaction per request", () => {
  /** Makes every write of an errand named `poison` fail in the database itself. */
  async function poison(a: TestApp, when: "UPDATE" | "DELETE") {
    const row = when === "UPDATE" ? "new" : "old";
    if (onPostgres) {
      await onSchema(
        a,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
      );
      await onSchema(
        a,
        `CREATE TRIGGER refuse BEFORE ${when} ON errands FOR EACH ROW WHEN (${row}.name = 'poison') EXECUTE FUNCTION refuse()`,
      );
    } else {
      a.store.writer.run(
        `CREATE TRIGGER refuse BEFORE ${when} ON errands WHEN ${row}.name = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END`,
      );
    }
  }

  test("a retry that fails midway keeps none of its changes and emits no event", async () => {
    const a = app();
    const before = [];
    for (const name of ["a", "b", "poison", "c"]) before.push(await failed(a, { name }));
    await poison(a, "UPDATE");
    const events = await record(a);
    // At once (on SQLite, in one group): the failing retry, and a create beside it.
    const [bulk, beside] = await Promise.all([
      a.call("POST", "/v1/errands/retry", { filter: { status: "failed" } }),
      a.call("POST", "/v1/errands", { name: "beside", type: "t" }),
    ]);
    expect(bulk.status).toBe(503);
    expect(beside.status).toBe(200);
    // The two errands retried before the poisoned one were rolled back with it.
    for (const e of before) expect(await get(a, e.id)).toEqual(e);
    await a.eventsHeard();
    expect(events.map((e) => e.event)).toEqual(["created"]);
  });

  test("a delete that fails midway keeps every errand and its logs", async () => {
    const a = app();
    const before = [];
    for (const name of ["a", "poison", "b"]) before.push(await failed(a, { name }));
    await poison(a, "DELETE");
    const events = await record(a);
    const bulk = await a.call("POST", "/v1/errands/delete", { ids: before.map((e) => e.id) });
    expect(bulk.status).toBe(503);
    for (const e of before) expect(await get(a, e.id)).toEqual(e);
    await a.eventsHeard();
    expect(events).toEqual([]);
  });
});

describe("bad bodies", () => {
  test("each route answers 400 naming the field, and changes nothing", async () => {
    const a = app();
    const e = await failed(a);
    const ids = [e.id];
    const cases: Array<[unknown, RegExp]> = [
      [{}, /^body\.ids: /],
      [{ after: e.id }, /^body\.ids: /],
      [{ ids: [] }, /^body\.ids: /],
      [{ ids: Array(1001).fill(e.id) }, /^body\.ids: /],
      [{ ids: e.id }, /^body\.ids: /],
      [{ ids: [1] }, /^body\.ids\.0: /],
      [{ ids, filter: {} }, /^body\.filter: /],
      [{ ids, after: e.id }, /^body\.after: /],
      [{ filter: "failed" }, /^body\.filter: /],
      [{ filter: null }, /^body\.filter: /],
      [{ filter: { status: "nope" } }, /^body\.filter\.status: /],
      [{ filter: { status: "FAILED" } }, /^body\.filter\.status: /],
      [{ filter: { type: "" } }, /^body\.filter\.type: /],
      [{ filter: { type: 7 } }, /^body\.filter\.type: /],
      // A misspelt key would otherwise widen the filter to every errand.
      [{ filter: { stauts: "failed" } }, /^body\.filter\.stauts: /],
      [{ filter: {}, after: 5 }, /^body\.after: /],
      [{ filter: {}, after: "x".repeat(65) }, /^body\.after: /],
      ["[1]", /^body: /],
      ["null", /^body: /],
    ];
    for (const route of ["/v1/errands/retry", "/v1/errands/delete"]) {
      for (const [body, error] of cases) {
        const answer = await a.call("POST", route, body);
        const seen = { route, body, status: answer.status, error: answer.body.error };
        expect(seen).toEqual({ route, body, status: 400, error: expect.stringMatching(error) });
        expect(typeof answer.body.message).toBe("string");
      }
    }
    expect(await get(a, e.id)).toEqual(e);
  });
});
