// Pipelines (SPEC §4) as a client sees them: validation, creation, unblocking, pipeline status,
// results flowing along the graph, deletion; and a property test over random graphs.

import { describe, expect, test } from "bun:test";
import type { ErrandEvent } from "../src/events/bus.ts";
import { type Answer, appsPerTest, storeRows, type TestApp } from "./harness.ts";
import { eventually } from "./sse.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const FAILED = "pipeline validation failed";

const app = appsPerTest();

type Spec = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = any;

/** A diamond: B and C depend on A, D on both B and C; each errand has its own type. */
function diamond(extra: Spec = {}): Spec {
  return {
    name: "diamond",
    errands: ["A", "B", "C", "D"].map((name) => ({ name, type: `type-${name}` })),
    dependencies: [
      { target: "B", dependsOn: "A" },
      { target: "C", dependsOn: "A" },
      { target: "D", dependsOn: "B" },
      { target: "D", dependsOn: "C" },
    ],
    ...extra,
  };
}

async function createPipeline(a: TestApp, spec: Spec): Promise<Json> {
  const answer = await a.call("POST", "/v1/pipeline/", spec);
  expect(answer.status).toBe(200);
  return answer.body.results;
}

/** The errands of a pipeline answer by name. */
function byName(pipeline: Json): Record<string, Json> {
  return Object.fromEntries(pipeline.errands.map((e: Json) => [e.name, e]));
}

async function pipeline(a: TestApp, id: string): Promise<Json> {
  const answer = await a.call("GET", `/v1/pipeline/${id}`);
  expect(answer.status).toBe(200);
  return answer.body.results;
}

async function errand(a: TestApp, id: string): Promise<Json> {
  return (await a.call("GET", `/v1/errand/${id}`)).body.results;
}

async function claim(a: TestApp, type: string): Promise<Answer> {
  return a.call("POST", `/v1/errands/process/${type}`);
}

/** Claims the errand of `type` and completes it with `results`. */
async function run(a: TestApp, type: string, results?: Spec): Promise<Json> {
  const claimed = await claim(a, type);
  expect(claimed.status).toBe(200);
  const body = results === undefined ? {} : { results };
  const done = await a.call("PUT", `/v1/errand/${claimed.body.results.id}/completed`, body);
  expect(done.status).toBe(200);
  return claimed.body.results;
}

function expectInvalid(answer: Answer, detail: RegExp) {
  expect(answer.status).toBe(400);
  expect(answer.body.message).toBe(FAILED);
  expect(answer.body.error).toMatch(detail);
}

/** The events heard from now on (those of earlier writes first reach their listeners). */
async function record(a: TestApp): Promise<ErrandEvent<Json>[]> {
  await a.eventsHeard();
  const events: ErrandEvent<Json>[] = [];
  a.bus.subscribe((event) => events.push(event as ErrandEvent<Json>));
  return events;
}

describe("create", () => {
  test("answers the pipeline with its errands and dependencies; roots inactive, others blocked", async () => {
    const a = app();
    const answer = await a.call("POST", "/v1/pipeline/", diamond());
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("OK");
    const p = answer.body.results;
    expect(p.id).toMatch(UUID_V7);
    expect(p.name).toBe("diamond");
    expect(p.status).toBe("inactive");
    expect(p.startedMillis).toBe(a.clock.now());
    expect(p.endedMillis).toBeUndefined();
    expect(p.deleteOnCompleted).toBeUndefined();
    expect(p.dependencies).toEqual(diamond().dependencies);
    expect(p.errands.map((e: Json) => e.name)).toEqual(["A", "B", "C", "D"]);
    for (const e of p.errands) {
      expect(e.id).toMatch(UUID_V7);
      expect(e.pipeline).toBe(p.id);
      expect(e.created).toBe(a.clock.now());
      expect(e.status).toBe(e.name === "A" ? "inactive" : "blocked");
    }
    expect(await pipeline(a, p.id)).toEqual(p);
    expect(await errand(a, byName(p).A.id)).toEqual(byName(p).A);
    expect(await errand(a, byName(p).B.id)).toEqual({
      ...byName(p).B,
      dependencyResults: { A: {} },
    });
  });

  test("keeps the errands' data and options, and deleteOnCompleted when set", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "one",
      deleteOnCompleted: true,
      errands: [
        { name: "x", type: "t", data: { file: "f" }, options: { ttl: 5, retries: 2, priority: 9 } },
      ],
    });
    expect(p.deleteOnCompleted).toBe(true);
    expect(p.dependencies).toEqual([]);
    expect(p.errands[0].data).toEqual({ file: "f" });
    expect(p.errands[0].options).toEqual({ ttl: 5, retries: 2, priority: 9 });
  });

  test("values sent for an errand's server-managed fields are ignored", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "managed",
      errands: [
        {
          name: "x",
          type: "t",
          id: "chosen-id",
          status: "completed",
          pipeline: "another",
          created: 1,
          attempts: 7,
          progress: 50,
          results: { forged: true },
          logs: [{ severity: "INFO", message: "forged", timestamp: 1 }],
        },
      ],
    });
    const x = p.errands[0];
    expect(x.id).not.toBe("chosen-id");
    expect(x.status).toBe("inactive");
    expect(x.pipeline).toBe(p.id);
    expect(x.created).toBe(a.clock.now());
    expect([x.attempts, x.progress]).toEqual([0, 0]);
    expect(x).not.toHaveProperty("results");
    expect(x).not.toHaveProperty("logs");
  });

  test("emits created for the runnable errands only, after the commit", async () => {
    const a = app();
    const events = await record(a);
    const p = await createPipeline(a, diamond());
    await a.eventsHeard();
    expect(events.map((e) => [e.event, e.errand.name])).toEqual([["created", "A"]]);
    expect(events[0]?.errand).toEqual(byName(p).A);
  });

  test("stores a repeated dependency once", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "twice",
      errands: [
        { name: "a", type: "t" },
        { name: "b", type: "t" },
      ],
      dependencies: [
        { target: "b", dependsOn: "a" },
        { target: "b", dependsOn: "a" },
      ],
    });
    expect(p.dependencies).toEqual([{ target: "b", dependsOn: "a" }]);
  });

  test("every pipeline route answers with and without a trailing slash", async () => {
    const a = app();
    for (const path of ["/v1/pipeline", "/v1/pipeline/"]) {
      expect((await a.call("POST", path, diamond())).status).toBe(200);
      expect((await a.call("POST", `${path}?dryRun=true`, diamond())).status).toBe(200);
    }
    for (const path of ["/v1/pipelines", "/v1/pipelines/"]) {
      const answer = await a.call("GET", `${path}?status=inactive`);
      expect(answer.status).toBe(200);
      expect(answer.body.results).toHaveLength(2);
    }
    const [first, second] = (await a.call("GET", "/v1/pipelines")).body.results;
    for (const [id, slash] of [
      [first.id, ""],
      [second.id, "/"],
    ]) {
      expect((await a.call("GET", `/v1/pipeline/${id}${slash}`)).status).toBe(200);
      expect((await a.call("DELETE", `/v1/pipeline/${id}${slash}`)).status).toBe(200);
    }
  });
});

describe("dry run", () => {
  test("Go's true values validate only and create nothing", async () => {
    const a = app();
    const events = await record(a);
    for (const value of ["1", "t", "T", "TRUE", "true", "True"]) {
      const answer = await a.call("POST", `/v1/pipeline/?dryRun=${value}`, diamond());
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ message: "pipeline validated successfully" });
    }
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
    expect((await a.call("GET", "/v1/errands/")).body.results).toEqual([]);
    await a.eventsHeard();
    expect(events).toEqual([]);
  });

  test("Go's false values create the pipeline", async () => {
    const a = app();
    for (const value of ["0", "f", "F", "FALSE", "false", "False"]) {
      const answer = await a.call("POST", `/v1/pipeline/?dryRun=${value}`, diamond());
      expect(answer.status).toBe(200);
      expect(answer.body.results.status).toBe("inactive");
    }
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toHaveLength(6);
  });

  test("any other value is a 400 and creates nothing", async () => {
    const a = app();
    for (const value of ["yes", "", "tRUE", "2", "on"]) {
      const answer = await a.call("POST", `/v1/pipeline/?dryRun=${value}`, diamond());
      expect(answer.status).toBe(400);
      expect(answer.body.error).toContain("dryRun");
    }
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
  });

  test("a dry run of an invalid pipeline answers the validation error", async () => {
    const a = app();
    expectInvalid(
      await a.call("POST", "/v1/pipeline/?dryRun=true", { name: "p", errands: [] }),
      /no errands/,
    );
  });
});

describe("validation", () => {
  const errands = [
    { name: "A", type: "t" },
    { name: "B", type: "t" },
    { name: "C", type: "t" },
    { name: "D", type: "t" },
  ];
  const cases: Array<[string, Spec, RegExp]> = [
    ["no errands", { name: "p", errands: [] }, /^no errands specified in pipeline$/],
    ["errands missing", { name: "p" }, /^no errands specified in pipeline$/],
    [
      "an errand without a name",
      { name: "p", errands: [{ name: "A", type: "t" }, { type: "t" }] },
      /errands\[1\] has no name/,
    ],
    [
      "an errand with an empty name",
      { name: "p", errands: [{ name: "", type: "t" }] },
      /errands\[0\] has no name/,
    ],
    [
      "an errand without a type",
      { name: "p", errands: [{ name: "A", type: "t" }, { name: "B" }] },
      /errands\[1\] \("B"\) has no type/,
    ],
    [
      "duplicate names",
      { name: "p", errands: [...errands, { name: "B", type: "u" }] },
      /^duplicate name in errands list: B$/,
    ],
    [
      "a self-dependency",
      { name: "p", errands, dependencies: [{ target: "C", dependsOn: "C" }] },
      /^errand cannot depend on itself: C$/,
    ],
    [
      "a dependency with an unknown target",
      { name: "p", errands, dependencies: [{ target: "Z", dependsOn: "A" }] },
      /^dependency references unknown errand name: Z \(dependencies\[0\]\.target\)$/,
    ],
    [
      "a dependency on an unknown errand",
      {
        name: "p",
        errands,
        dependencies: [
          { target: "B", dependsOn: "A" },
          { target: "B", dependsOn: "Y" },
        ],
      },
      /^dependency references unknown errand name: Y \(dependencies\[1\]\.dependsOn\)$/,
    ],
    [
      "a cycle, naming an errand on it",
      {
        name: "p",
        errands,
        dependencies: [
          { target: "B", dependsOn: "A" },
          { target: "C", dependsOn: "B" },
          { target: "D", dependsOn: "C" },
          { target: "B", dependsOn: "D" },
        ],
      },
      /^dependency cycle found involving '(B|C|D)': /,
    ],
    [
      "a cycle through every errand",
      {
        name: "p",
        errands: errands.slice(0, 2),
        dependencies: [
          { target: "A", dependsOn: "B" },
          { target: "B", dependsOn: "A" },
        ],
      },
      /^dependency cycle found involving '(A|B)': (A depends on B depends on A|B depends on A depends on B)$/,
    ],
    ["no pipeline name", { errands }, /the pipeline has no name/],
  ];
  for (const [what, spec, detail] of cases) {
    test(`refuses ${what} with 400 and creates nothing`, async () => {
      const a = app();
      expectInvalid(await a.call("POST", "/v1/pipeline/", spec), detail);
      expectInvalid(await a.call("POST", "/v1/pipeline/?dryRun=true", spec), detail);
      expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
      expect((await a.call("GET", "/v1/errands/")).body.results).toEqual([]);
    });
  }

  test("wrong types are a 400 naming the field", async () => {
    const a = app();
    const bad: Array<[Spec, string]> = [
      [{ name: "p", errands: "A" }, "body.errands"],
      [{ name: "p", errands: [{ name: 7, type: "t" }] }, "body.errands.0.name"],
      [{ name: "p", errands: [{ name: "A", type: "t", options: { ttl: "5" } }] }, "ttl"],
      [{ name: "p", errands, dependencies: [{ target: "A" }] }, "dependsOn"],
      [{ name: "p", errands, deleteOnCompleted: "yes" }, "deleteOnCompleted"],
    ];
    for (const [spec, field] of bad) {
      const answer = await a.call("POST", "/v1/pipeline/", spec);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toContain(field);
    }
    expect((await a.call("POST", "/v1/pipeline/", "[1,")).status).toBe(400);
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
  });
});

describe("reading and deleting", () => {
  test("an unknown pipeline is 404 {status: not_found} on GET and DELETE", async () => {
    const a = app();
    for (const method of ["GET", "DELETE"]) {
      for (const slash of ["", "/"]) {
        for (const id of ["nope", "x".repeat(300)]) {
          const answer = await a.call(method, `/v1/pipeline/${id}${slash}`);
          expect(answer.status).toBe(404);
          expect(answer.body.status).toBe("not_found");
        }
      }
    }
  });

  test("the list pages with ?limit and ?after, also by status, and streams past a page of rows", async () => {
    const a = app();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (await createPipeline(a, { name: `p${i}`, errands: [{ name: "x", type: "t" }] })).id,
      );
    }
    const idsOf = (answer: { body: Json }) => answer.body.results.map((p: Json) => p.id);
    const first = await a.call("GET", "/v1/pipelines/?limit=2");
    expect(idsOf(first)).toEqual(ids.slice(0, 2));
    expect(first.body.next).toBe(ids[1]);
    const rest = await a.call("GET", `/v1/pipelines/?limit=5&after=${first.body.next}`);
    expect(idsOf(rest)).toEqual(ids.slice(2));
    expect(rest.body.next).toBeNull();
    const inactive = await a.call("GET", "/v1/pipelines/?status=inactive&limit=4");
    expect(idsOf(inactive)).toEqual(ids.slice(0, 4));
    expect(inactive.body.next).toBe(ids[3]);
    expect((await a.call("GET", "/v1/pipelines/?limit=0")).status).toBe(400);

    for (let i = 5; i < 620; i++) {
      ids.push(
        (await createPipeline(a, { name: `p${i}`, errands: [{ name: "x", type: "t" }] })).id,
      );
    }
    const all = await a.call("GET", "/v1/pipelines");
    expect(all.headers.get("content-type")).toStartWith("application/json");
    expect(idsOf(all)).toEqual(ids);
  });

  test("the list is [] when empty, omits errands and dependencies, and filters by status", async () => {
    const a = app();
    expect((await a.call("GET", "/v1/pipelines/")).body).toEqual({ status: "OK", results: [] });
    const first = await createPipeline(a, diamond());
    const second = await createPipeline(a, diamond({ name: "second" }));
    await claim(a, "type-A");
    const all = (await a.call("GET", "/v1/pipelines/")).body.results;
    expect(all.map((p: Json) => p.id)).toEqual([first.id, second.id]);
    for (const p of all) {
      expect(p.errands).toBeUndefined();
      expect(p.dependencies).toBeUndefined();
    }
    expect(all[0]).toEqual({
      id: first.id,
      name: "diamond",
      status: "active",
      startedMillis: first.startedMillis,
    });
    const active = (await a.call("GET", "/v1/pipelines/?status=active")).body.results;
    expect(active.map((p: Json) => p.id)).toEqual([first.id]);
    const inactive = (await a.call("GET", "/v1/pipelines?status=inactive")).body.results;
    expect(inactive.map((p: Json) => p.id)).toEqual([second.id]);
    expect((await a.call("GET", "/v1/pipelines/?status=failed")).body.results).toEqual([]);
    const bad = await a.call("GET", "/v1/pipelines/?status=nonsense");
    expect(bad.status).toBe(400);
  });

  test("DELETE removes the pipeline, its errands, their logs and its edges, emitting deleted", async () => {
    const a = app();
    const keep = await createPipeline(a, diamond({ name: "keep" }));
    const p = await createPipeline(a, {
      ...diamond(),
      errands: ["A", "B", "C", "D"].map((name) => ({ name, type: `gone-${name}` })),
    });
    await run(a, "gone-A");
    const events = await record(a);
    const answer = await a.call("DELETE", `/v1/pipeline/${p.id}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "OK" });
    expect((await a.call("GET", `/v1/pipeline/${p.id}`)).status).toBe(404);
    for (const e of p.errands) expect((await a.call("GET", `/v1/errand/${e.id}`)).status).toBe(404);
    await a.eventsHeard();
    expect(events.map((e) => [e.event, e.errand.name]).sort()).toEqual([
      ["deleted", "A"],
      ["deleted", "B"],
      ["deleted", "C"],
      ["deleted", "D"],
    ]);
    // Rows left behind, which no read of the driver would show.
    const ids = p.errands.map((e: Json) => `'${e.id}'`).join(", ");
    const count = async (sql: string) => Number((await storeRows(a, sql))[0]?.n);
    expect(await count(`SELECT count(*) AS n FROM errand_logs WHERE errand_id IN (${ids})`)).toBe(
      0,
    );
    expect(
      await count(
        `SELECT count(*) AS n FROM pipeline_dependencies WHERE target IN (${ids}) OR depends_on IN (${ids})`,
      ),
    ).toBe(0);
    // The other pipeline is untouched.
    expect(await pipeline(a, keep.id)).toEqual(keep);
  });

  test("an errand of a pipeline cannot be deleted alone, nor by a bulk delete", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const answer = await a.call("DELETE", `/v1/errand/${byName(p).A.id}`);
    expect(answer.status).toBe(409);
    const bulk = await a.call("POST", "/v1/errands/update/type/type-A", { delete: true });
    expect(bulk.body.count).toBe(0);
    expect((await pipeline(a, p.id)).errands).toHaveLength(4);
  });

  test("pipelines survive a restart", async () => {
    const first = app();
    const p = await createPipeline(first, diamond());
    await run(first, "type-A", { n: 1 });
    first.close();
    const second = app({ dir: first.dir });
    const again = await pipeline(second, p.id);
    expect(again.status).toBe("active");
    expect(byName(again).B.status).toBe("inactive");
    const claimed = await claim(second, "type-B");
    expect(claimed.body.results.dependencyResults).toEqual({ A: { n: 1 } });
  });
});

describe("running a pipeline", () => {
  test("an errand named __proto__ hands its results on like any other name", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "prototype",
      errands: [
        { name: "__proto__", type: "first" },
        { name: "constructor", type: "second" },
        { name: "last", type: "third" },
      ],
      dependencies: [
        { target: "last", dependsOn: "__proto__" },
        { target: "last", dependsOn: "constructor" },
      ],
    });
    await run(a, "first", { rows: 1 });
    await run(a, "second", { rows: 2 });
    const claimed = await claim(a, "third");
    const text = JSON.stringify(claimed.body.results.dependencyResults);
    expect(JSON.parse(text)).toEqual(
      JSON.parse('{"__proto__":{"rows":1},"constructor":{"rows":2}}'),
    );
    expect(Object.keys(claimed.body.results.dependencyResults).sort()).toEqual([
      "__proto__",
      "constructor",
    ]);
    expect((await pipeline(a, p.id)).status).toBe("active");
  });

  test("an errand is unblocked only once all its dependencies have completed", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const events = await record(a);
    await run(a, "type-A");
    let now = byName(await pipeline(a, p.id));
    expect([now.B.status, now.C.status, now.D.status]).toEqual(["inactive", "inactive", "blocked"]);
    expect(now.B.logs).toEqual([
      { severity: "INFO", message: "errand unblocked", timestamp: a.clock.now() },
    ]);
    await a.eventsHeard();
    expect(events.map((e) => [e.event, e.errand.name])).toEqual([
      ["processing", "A"],
      ["completed", "A"],
      ["unblocked", "B"],
      ["unblocked", "C"],
    ]);
    expect(events[2]?.errand.status).toBe("inactive");
    await run(a, "type-B");
    now = byName(await pipeline(a, p.id));
    expect(now.D.status).toBe("blocked");
    expect((await claim(a, "type-D")).status).toBe(404);
    await run(a, "type-C");
    now = byName(await pipeline(a, p.id));
    expect(now.D.status).toBe("inactive");
    await a.eventsHeard();
    expect(events.filter((e) => e.event === "unblocked")).toHaveLength(3);
  });

  test("a blocked errand cannot be claimed, completed, failed or retried", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const b = byName(p).B.id;
    expect((await claim(a, "type-B")).status).toBe(404);
    expect((await a.call("PUT", `/v1/errand/${b}/completed`, {})).status).toBe(409);
    expect((await a.call("PUT", `/v1/errand/${b}/failed`, { reason: "x" })).status).toBe(409);
    expect((await a.call("POST", `/v1/errand/${b}/retry`)).status).toBe(409);
    expect((await errand(a, b)).status).toBe("blocked");
  });

  test("a long-poll claim is served by an errand as it is unblocked", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const pending = a.call("POST", "/v1/errands/process/type-B?wait=30");
    await eventually(() => a.waiters.count === 1);
    await run(a, "type-A", { rows: 3 });
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.body.results.id).toBe(byName(p).B.id);
    expect(answer.body.results.status).toBe("active");
    expect(answer.body.results.dependencyResults).toEqual({ A: { rows: 3 } });
  });

  test("dependency results reach the claim and GET of a dependent, and only of a dependent", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const first = await run(a, "type-A", { rows: 42 });
    expect(first.dependencyResults).toBeUndefined();
    expect((await errand(a, first.id)).dependencyResults).toBeUndefined();
    await run(a, "type-B", { file: "b.csv" });
    await run(a, "type-C");
    const d = await claim(a, "type-D");
    expect(d.body.results.dependencyResults).toEqual({ B: { file: "b.csv" }, C: {} });
    expect((await errand(a, byName(p).D.id)).dependencyResults).toEqual({
      B: { file: "b.csv" },
      C: {},
    });
    // Still blocked, a dependent shows what has come in so far.
    const q = await createPipeline(a, diamond({ name: "q" }));
    expect((await errand(a, byName(q).B.id)).dependencyResults).toEqual({ A: {} });
    // An errand of no pipeline has none.
    const lone = (await a.call("POST", "/v1/errands/", { name: "lone", type: "lone" })).body;
    expect((await claim(a, "lone")).body.results.dependencyResults).toBeUndefined();
    expect((await errand(a, lone.results.id)).dependencyResults).toBeUndefined();
  });

  test("an errand's own deleteOnCompleted does not remove it from its pipeline", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "p",
      errands: [
        { name: "A", type: "type-A", options: { deleteOnCompleted: true } },
        { name: "B", type: "type-B" },
      ],
      dependencies: [{ target: "B", dependsOn: "A" }],
    });
    await run(a, "type-A", { v: 1 });
    expect((await errand(a, byName(p).A.id)).status).toBe("completed");
    expect((await claim(a, "type-B")).body.results.dependencyResults).toEqual({ A: { v: 1 } });
  });

  test("completing and claiming the next in one call claims an errand it unblocked", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "chain",
      errands: [
        { name: "one", type: "same" },
        { name: "two", type: "same" },
      ],
      dependencies: [{ target: "two", dependsOn: "one" }],
    });
    const one = (await claim(a, "same")).body.results;
    const answer = await a.call("PUT", `/v1/errand/${one.id}/completed?next=true`, {
      results: { n: 1 },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.next.id).toBe(byName(p).two.id);
    expect(answer.body.next.dependencyResults).toEqual({ one: { n: 1 } });
  });
});

describe("scheduled errands in a pipeline", () => {
  test("an errand with no dependencies and a delay is scheduled, then queued when due", async () => {
    const a = app();
    const events = await record(a);
    const p = await createPipeline(a, {
      name: "later",
      errands: [{ name: "x", type: "soon", options: { delay: 60_000 } }],
    });
    const x = byName(p).x;
    expect(x.status).toBe("scheduled");
    await a.eventsHeard();
    expect(events.map((e) => [e.event, e.errand.status])).toEqual([["created", "scheduled"]]);
    expect((await claim(a, "soon")).status).toBe(404);
    a.clock.advance(60_000);
    await a.sweep();
    expect((await errand(a, x.id)).status).toBe("inactive");
    await a.eventsHeard();
    expect(events.at(-1)?.event).toBe("updated");
    expect((await claim(a, "soon")).body.results.id).toBe(x.id);
  });

  test("a dependent with its time ahead waits for both: unblocked to scheduled, then queued", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "both",
      errands: [
        { name: "A", type: "first" },
        { name: "B", type: "second", options: { runAt: a.clock.now() + 120_000 } },
        { name: "C", type: "third", options: { delay: 1000 } },
      ],
      dependencies: [
        { target: "B", dependsOn: "A" },
        { target: "C", dependsOn: "A" },
      ],
    });
    expect([byName(p).B.status, byName(p).C.status]).toEqual(["blocked", "blocked"]);
    const events = await record(a);
    a.clock.advance(60_000);
    await run(a, "first");
    const now = byName(await pipeline(a, p.id));
    // C's time has passed while it was blocked: queued at once. B's is still ahead.
    expect([now.B.status, now.C.status]).toEqual(["scheduled", "inactive"]);
    await a.eventsHeard();
    expect(events.filter((e) => e.event === "unblocked").map((e) => e.errand.status)).toEqual([
      "scheduled",
      "inactive",
    ]);
    expect((await claim(a, "second")).status).toBe(404);
    a.clock.advance(60_000);
    await a.sweep();
    expect((await claim(a, "second")).body.results.id).toBe(now.B.id);
    expect((await claim(a, "third")).body.results.id).toBe(now.C.id);
  });

  test("runAt and delay together are refused, on create and on a dry run", async () => {
    const a = app();
    const spec = {
      name: "both",
      errands: [{ name: "x", type: "t", options: { runAt: a.clock.now() + 1000, delay: 1000 } }],
    };
    for (const path of ["/v1/pipeline/", "/v1/pipeline/?dryRun=true"]) {
      const answer = await a.call("POST", path, spec);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatch(/runAt or delay/);
    }
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
  });
});

describe("clear", () => {
  test("deletes a pipeline settled longer ago than the duration, with its errands", async () => {
    const a = app();
    const old = await createPipeline(a, diamond({ name: "old" }));
    for (const type of ["type-A", "type-B", "type-C", "type-D"]) await run(a, type);
    a.clock.advance(2 * 3_600_000);
    const recent = await createPipeline(a, {
      name: "recent",
      errands: [{ name: "x", type: "type-x" }],
    });
    await run(a, "type-x");
    a.clock.advance(600_000);
    const events = await record(a);
    const cleared = await a.call("POST", "/v1/errands/clear/1h");
    expect(cleared.status).toBe(200);
    const ids = old.errands.map((e: Json) => e.id).sort();
    expect(cleared.body.results.map((e: Json) => e.id).sort()).toEqual(ids);
    await a.eventsHeard();
    expect(
      events
        .filter((e) => e.event === "deleted")
        .map((e) => e.errand.id)
        .sort(),
    ).toEqual(ids);
    expect((await a.call("GET", `/v1/pipeline/${old.id}`)).status).toBe(404);
    expect((await a.call("GET", `/v1/pipeline/${recent.id}`)).body.results.status).toBe(
      "completed",
    );
  });

  test("a failed pipeline waits for its running errands, then goes with its blocked ones", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "split",
      errands: [
        { name: "A", type: "split-a" },
        { name: "B", type: "split-b" },
        { name: "C", type: "split-c" },
      ],
      dependencies: [{ target: "C", dependsOn: "A" }],
    });
    const failing = (await claim(a, "split-a")).body.results;
    const running = (await claim(a, "split-b")).body.results;
    await a.call("PUT", `/v1/errand/${failing.id}/failed`, { reason: "broken" });
    a.clock.advance(2 * 3_600_000);
    // Failed, but B is still running: not settled, so kept.
    expect((await a.call("POST", "/v1/errands/clear/1h")).body.results).toEqual([]);
    await a.call("PUT", `/v1/errand/${running.id}/completed`);
    expect((await a.call("POST", "/v1/errands/clear/1h")).body.results).toEqual([]);
    a.clock.advance(2 * 3_600_000);
    const cleared = (await a.call("POST", "/v1/errands/clear/1h")).body.results;
    expect(cleared.map((e: Json) => [e.name, e.status]).sort()).toEqual([
      ["A", "failed"],
      ["B", "completed"],
      ["C", "blocked"],
    ]);
    expect((await a.call("GET", `/v1/pipeline/${p.id}`)).status).toBe(404);
  });

  test("retrying an errand of a settled failed pipeline keeps it from clear", async () => {
    const a = app();
    const p = await createPipeline(a, { name: "again", errands: [{ name: "A", type: "again" }] });
    const claimed = (await claim(a, "again")).body.results;
    await a.call("PUT", `/v1/errand/${claimed.id}/failed`, { reason: "x" });
    await a.call("POST", `/v1/errand/${claimed.id}/retry`);
    a.clock.advance(2 * 3_600_000);
    expect((await a.call("POST", "/v1/errands/clear/1h")).body.results).toEqual([]);
    expect((await a.call("GET", `/v1/pipeline/${p.id}`)).body.results.status).toBe("active");
  });
});

describe("pipeline status", () => {
  test("errands completed at the same moment unblock their dependent and settle their pipeline", async () => {
    const a = app();
    // Ten rounds: where writes run concurrently (PostgreSQL), the two completions race.
    for (let round = 0; round < 10; round++) {
      const type = (name: string) => `race${round}-${name}`;
      const p = await createPipeline(a, {
        ...diamond(),
        errands: ["A", "B", "C", "D"].map((name) => ({ name, type: type(name) })),
      });
      await run(a, type("A"));
      const middle = [
        (await claim(a, type("B"))).body.results,
        (await claim(a, type("C"))).body.results,
      ];
      const done = await Promise.all(
        middle.map((e) => a.call("PUT", `/v1/errand/${e.id}/completed`)),
      );
      expect(done.map((x) => x.status)).toEqual([200, 200]);
      expect(byName(await pipeline(a, p.id)).D.status).toBe("inactive");

      const pair = await createPipeline(a, {
        name: "pair",
        errands: ["X", "Y"].map((name) => ({ name, type: type(name) })),
      });
      const both = [
        (await claim(a, type("X"))).body.results,
        (await claim(a, type("Y"))).body.results,
      ];
      await Promise.all(both.map((e) => a.call("PUT", `/v1/errand/${e.id}/completed`)));
      expect((await pipeline(a, pair.id)).status).toBe("completed");
    }
  });

  test("inactive, then active once an errand starts, then completed with endedMillis", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    expect((await pipeline(a, p.id)).status).toBe("inactive");
    a.clock.advance(1000);
    await claim(a, "type-A");
    expect((await pipeline(a, p.id)).status).toBe("active");
    const a1 = byName(p).A.id;
    await a.call("PUT", `/v1/errand/${a1}/completed`, {});
    for (const type of ["type-B", "type-C", "type-D"]) {
      a.clock.advance(1000);
      expect((await pipeline(a, p.id)).status).toBe("active");
      await run(a, type);
    }
    const done = await pipeline(a, p.id);
    expect(done.status).toBe("completed");
    expect(done.endedMillis).toBe(a.clock.now());
  });

  test("endedMillis is set once, even when a finished pipeline runs again", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "one",
      errands: [{ name: "A", type: "solo" }],
    });
    await run(a, "solo");
    const ended = (await pipeline(a, p.id)).endedMillis;
    expect(ended).toBe(a.clock.now());
    a.clock.advance(5000);
    await a.call("POST", `/v1/errand/${byName(p).A.id}/retry`);
    const again = await pipeline(a, p.id);
    expect(again.status).toBe("active");
    expect(again.endedMillis).toBe(ended);
    await run(a, "solo");
    expect((await pipeline(a, p.id)).endedMillis).toBe(ended);
  });

  test("a failed errand fails the pipeline; retrying it makes the pipeline active again", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const claimed = (await claim(a, "type-A")).body.results;
    await a.call("PUT", `/v1/errand/${claimed.id}/failed`, { reason: "boom" });
    expect((await pipeline(a, p.id)).status).toBe("failed");
    expect((await a.call("GET", "/v1/pipelines/?status=failed")).body.results).toHaveLength(1);
    const retried = await a.call("POST", `/v1/errand/${claimed.id}/retry`);
    expect(retried.status).toBe(200);
    expect((await pipeline(a, p.id)).status).toBe("active");
    await run(a, "type-A");
    expect(byName(await pipeline(a, p.id)).B.status).toBe("inactive");
  });

  test("a failure with retries left keeps the pipeline going", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "p",
      errands: [
        { name: "A", type: "type-A", options: { retries: 1 } },
        { name: "B", type: "type-B" },
      ],
      dependencies: [{ target: "B", dependsOn: "A" }],
    });
    const claimed = (await claim(a, "type-A")).body.results;
    const failed = await a.call("PUT", `/v1/errand/${claimed.id}/failed`, { reason: "flaky" });
    expect(failed.body.results.status).toBe("inactive");
    expect((await pipeline(a, p.id)).status).toBe("active");
    await run(a, "type-A");
    await run(a, "type-B");
    expect((await pipeline(a, p.id)).status).toBe("completed");
  });

  test("a TTL expiry of a pipeline errand fails the pipeline", async () => {
    const a = app();
    const p = await createPipeline(a, {
      name: "p",
      errands: [{ name: "A", type: "slow", options: { ttl: 1 } }],
    });
    await claim(a, "slow");
    a.clock.advance(61_000);
    await a.sweep();
    expect((await errand(a, byName(p).A.id)).status).toBe("failed");
    expect((await pipeline(a, p.id)).status).toBe("failed");
  });

  test("a bulk status update counts: completing a root unblocks its dependents", async () => {
    const a = app();
    const p = await createPipeline(a, diamond());
    const events = await record(a);
    const answer = await a.call("POST", "/v1/errands/update/type/type-A", { status: "completed" });
    expect(answer.body.count).toBe(1);
    const now = await pipeline(a, p.id);
    expect(now.status).toBe("active");
    expect(byName(now).B.status).toBe("inactive");
    await a.eventsHeard();
    expect(events.filter((e) => e.event === "unblocked")).toHaveLength(2);
    await a.call("POST", "/v1/errands/update/type/type-B", { status: "failed" });
    expect((await pipeline(a, p.id)).status).toBe("failed");
  });

  test("a completed pipeline with deleteOnCompleted goes, with its errands", async () => {
    const a = app();
    const p = await createPipeline(a, diamond({ deleteOnCompleted: true }));
    for (const type of ["type-A", "type-B", "type-C"]) await run(a, type);
    expect((await pipeline(a, p.id)).status).toBe("active");
    const last = (await claim(a, "type-D")).body.results;
    const events = await record(a);
    const done = await a.call("PUT", `/v1/errand/${last.id}/completed`, { results: { ok: true } });
    expect(done.status).toBe(200);
    expect(done.body.results.status).toBe("completed");
    expect(done.body.results.results).toEqual({ ok: true });
    expect((await a.call("GET", `/v1/pipeline/${p.id}`)).status).toBe(404);
    for (const e of p.errands) expect((await a.call("GET", `/v1/errand/${e.id}`)).status).toBe(404);
    await a.eventsHeard();
    expect(events.map((e) => e.event)).toEqual([
      "completed",
      "deleted",
      "deleted",
      "deleted",
      "deleted",
    ]);
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
  });
});

// --- property tests over random graphs ---

/** mulberry32: a small seeded generator, so a failing seed can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const TYPES = ["alpha", "beta", "gamma"];

/** A random DAG: edges only from earlier to later errands of a random order. */
function randomDag(rand: () => number, size: number) {
  const names = Array.from({ length: size }, (_, i) => `e${i}`);
  const order = shuffle(names, rand);
  const density = rand() * 0.25;
  const dependencies: Array<{ target: string; dependsOn: string }> = [];
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < j; i++) {
      if (rand() < density) {
        dependencies.push({ target: order[j] as string, dependsOn: order[i] as string });
      }
    }
  }
  const errands = names.map((name) => ({
    name,
    type: TYPES[Math.floor(rand() * TYPES.length)] as string,
  }));
  return { name: "random", errands, dependencies: shuffle(dependencies, rand) };
}

describe("random graphs", () => {
  test("a simulated worker runs every errand once, only after all its dependencies", async () => {
    const a = app({ env: { ERRANDS_SYNC: "normal" } });
    for (let seed = 1; seed <= 30; seed++) {
      const rand = random(seed);
      const spec = randomDag(rand, 1 + Math.floor(rand() * 50));
      const p = await createPipeline(a, spec);
      const dependsOn = new Map<string, string[]>();
      for (const { target, dependsOn: d } of spec.dependencies) {
        dependsOn.set(target, [...(dependsOn.get(target) ?? []), d]);
      }
      const completed = new Set<string>();
      const runs = new Map<string, number>();
      for (;;) {
        // Claim everything claimable, then complete it in a random order.
        const claimed: Json[] = [];
        for (const type of shuffle(TYPES, rand)) {
          for (;;) {
            const answer = await claim(a, type);
            if (answer.status === 404) break;
            expect(answer.status).toBe(200);
            claimed.push(answer.body.results);
          }
        }
        if (claimed.length === 0) break;
        for (const e of shuffle(claimed, rand)) {
          const deps = dependsOn.get(e.name) ?? [];
          for (const d of deps) expect(completed.has(d)).toBe(true);
          const expected =
            deps.length === 0
              ? undefined
              : Object.fromEntries(deps.map((d) => [d, { by: d, seed }]));
          expect(e.dependencyResults).toEqual(expected);
          runs.set(e.name, (runs.get(e.name) ?? 0) + 1);
          const done = await a.call("PUT", `/v1/errand/${e.id}/completed`, {
            results: { by: e.name, seed },
          });
          expect(done.status).toBe(200);
          completed.add(e.name);
        }
      }
      expect(runs.size).toBe(spec.errands.length);
      for (const count of runs.values()) expect(count).toBe(1);
      const finished = await pipeline(a, p.id);
      expect(finished.status).toBe("completed");
      expect(finished.errands.every((e: Json) => e.status === "completed")).toBe(true);
    }
  });

  test("a graph with a cycle is always refused, naming an errand on the cycle", async () => {
    const a = app({ env: { ERRANDS_SYNC: "normal" } });
    for (let seed = 1; seed <= 200; seed++) {
      const rand = random(seed * 7919);
      const size = 2 + Math.floor(rand() * 49);
      const spec = randomDag(rand, size);
      // Close a loop through 2 to 6 distinct errands.
      const loop = shuffle(
        spec.errands.map((e) => e.name),
        rand,
      ).slice(0, 2 + Math.floor(rand() * 5));
      loop.forEach((name, i) => {
        spec.dependencies.push({ target: name, dependsOn: loop[(i + 1) % loop.length] as string });
      });
      spec.dependencies = shuffle(spec.dependencies, rand);
      const dry = seed % 2 === 0 ? "?dryRun=true" : "";
      const answer = await a.call("POST", `/v1/pipeline/${dry}`, spec);
      expectInvalid(answer, /^dependency cycle found involving '/);
      const named = /involving '([^']+)'/.exec(answer.body.error)?.[1] as string;
      expect(onCycle(named, spec.dependencies)).toBe(true);
    }
    expect((await a.call("GET", "/v1/pipelines/")).body.results).toEqual([]);
    expect((await a.call("GET", "/v1/errands/")).body.results).toEqual([]);
  });
});

/** Whether following dependencies from `name` leads back to it. */
function onCycle(name: string, edges: Array<{ target: string; dependsOn: string }>): boolean {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.target, [...(next.get(e.target) ?? []), e.dependsOn]);
  const seen = new Set<string>();
  const stack = [...(next.get(name) ?? [])];
  while (stack.length > 0) {
    const at = stack.pop() as string;
    if (at === name) return true;
    if (seen.has(at)) continue;
    seen.add(at);
    stack.push(...(next.get(at) ?? []));
  }
  return false;
}
