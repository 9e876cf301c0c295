// The errand routes of SPEC §1–§3 as a client sees them: answers, errors, and lifecycle rules.

import { afterAll, describe, expect, test } from "bun:test";
import { MAX_LOG_MESSAGE } from "../src/errands/model.ts";
import { type Answer, makeApp, onPostgres, removeTempDirs, type TestApp } from "./harness.ts";

afterAll(removeTempDirs);

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function create(app: TestApp, spec: Record<string, unknown> = {}) {
  const answer = await app.call("POST", "/v1/errands", { name: "job", type: "work", ...spec });
  expect(answer.status).toBe(200);
  return answer.body.results;
}

/** Creates an errand of its own type and claims it: an active errand. */
async function active(app: TestApp, spec: Record<string, unknown> = {}) {
  const type = `t-${crypto.randomUUID()}`;
  const created = await create(app, { type, ...spec });
  const claimed = await app.call("POST", `/v1/errands/process/${type}`);
  expect(claimed.status).toBe(200);
  expect(claimed.body.results.id).toBe(created.id);
  return claimed.body.results;
}

async function get(app: TestApp, id: string) {
  return (await app.call("GET", `/v1/errand/${id}`)).body.results;
}

function expectError(answer: Answer, status: number, detail?: RegExp) {
  expect(answer.status).toBe(status);
  expect(typeof answer.body.message).toBe("string");
  expect(typeof answer.body.error).toBe("string");
  expect(answer.body.status).toBeUndefined();
  if (detail) expect(answer.body.error).toMatch(detail);
}

describe("conventions", () => {
  test("success answers use the envelope {status: OK, results}", async () => {
    const app = makeApp();
    const created = await app.call("POST", "/v1/errands", { name: "a", type: "t" });
    expect(created.status).toBe(200);
    expect(Object.keys(created.body).sort()).toEqual(["results", "status"]);
    expect(created.body.status).toBe("OK");
    expect(created.headers.get("content-type")).toContain("application/json");
    const got = await app.call("GET", `/v1/errand/${created.body.results.id}`);
    expect(got.body).toEqual({ status: "OK", results: created.body.results });
    app.close();
  });

  test("a lone surrogate anywhere in a body is refused; a surrogate pair is kept as sent", async () => {
    const app = makeApp();
    const lone = [
      '{"name":"s\\ud800x","type":"t"}',
      '{"name":"a","type":"t","data":{"k":["\\udfff"]}}',
      '{"name":"a","type":"t","data":{"\\uDBFF":1}}',
    ];
    for (const body of lone) {
      expectError(await app.call("POST", "/v1/errands", body), 400, /lone surrogate/);
    }
    expect((await app.call("GET", "/v1/errands")).body.results).toEqual([]);
    const paired = await app.call("POST", "/v1/errands", '{"name":"s\\ud83d\\ude00x","type":"t"}');
    expect(paired.status).toBe(200);
    expect(paired.body.results.name).toBe("s😀x");
    const got = await app.call("GET", `/v1/errand/${paired.body.results.id}`);
    expect(got.body.results.name).toBe("s😀x");
    app.close();
  });

  test("a NUL character in a name, a log line, a type's controls or a path is kept as sent", async () => {
    const app = makeApp();
    // U+0000, and U+FFFF beside "0" and "1" (what PostgreSQL keeps U+0000 as).
    const text = "n\u0000u\uFFFF0\uFFFF1l";
    const made = await create(app, { name: text, type: "nul" });
    expect(made.name).toBe(text);
    expect((await get(app, made.id)).name).toBe(text);
    expect((await app.call("POST", "/v1/errands/process/nul")).body.results.id).toBe(made.id);
    const log = { severity: "INFO", message: text };
    expect((await app.call("POST", `/v1/errand/${made.id}/log`, log)).status).toBe(200);
    expect((await get(app, made.id)).logs.at(-1).message).toBe(text);
    // A type a new errand may not have, but which claims, lists and controls take.
    const type = encodeURIComponent(text);
    const paused = await app.call("PUT", `/v1/types/${type}`, { paused: true });
    expect(paused.body.results).toMatchObject({ type: text, paused: true });
    const types = (await app.call("GET", "/v1/types")).body.results;
    expect(types.find((t: { type: string }) => t.type === text)).toMatchObject({ paused: true });
    expect((await app.call("GET", `/v1/errands/list/type/${type}`)).body.results).toEqual([]);
    expectError(await app.call("POST", `/v1/errands/process/${type}`), 404);
    expectError(await app.call("GET", "/v1/errand/a%00b"), 404);
    app.close();
  });

  test("every route answers the same with and without a trailing slash, with no redirect", async () => {
    const app = makeApp();
    const seen: Array<[string, string, Answer]> = [];
    const both = async (
      method: string,
      path: string,
      body?: unknown,
      prepare?: () => Promise<string>,
    ) => {
      const [base, query = ""] = path.split("?");
      for (const form of [base, `${base}/`]) {
        const id = prepare ? await prepare() : "";
        const url = `${form?.replace(":id", id)}${query ? `?${query}` : ""}`;
        seen.push([method, url, await app.call(method, url, body)]);
      }
    };
    const activeId = async () => (await active(app)).id;
    await create(app, { type: "slash" });
    await create(app, { type: "slash" });
    await create(app, { type: "slash" });
    await create(app, { type: "slash" });

    await both("POST", "/v1/errands", { name: "a", type: "t" });
    await both("GET", "/v1/errands");
    await both("GET", "/v1/errands/list/type/slash");
    await both("GET", "/v1/errands/list/status/inactive");
    await both("POST", "/v1/errands/process/slash");
    await both("POST", "/v1/errands/process?type=slash");
    await both("GET", "/v1/errand/:id", undefined, activeId);
    await both("PUT", "/v1/errand/:id", { progress: 5 }, activeId);
    await both("POST", "/v1/errand/:id/log", { severity: "INFO", message: "m" }, activeId);
    await both("PUT", "/v1/errand/:id/failed", { reason: "r" }, activeId);
    await both("PUT", "/v1/errand/:id/completed", { results: {} }, activeId);
    await both("POST", "/v1/errand/:id/retry", undefined, activeId);
    await both("DELETE", "/v1/errand/:id", undefined, activeId);
    await both("POST", "/v1/errands/update/type/nothing", { status: "inactive" });
    await both("POST", "/v1/errands/clear/1h");

    for (const [method, url, answer] of seen) {
      expect({ method, url, status: answer.status }).toEqual({ method, url, status: 200 });
      expect(answer.headers.get("location")).toBeNull();
      expect(answer.body.status).toBe("OK");
    }
    app.close();
  });

  test("an unknown route answers a JSON 404 with the error envelope", async () => {
    const app = makeApp();
    for (const [method, path] of [
      ["GET", "/v1/nothing"],
      // `/` is the dashboard; a path beside it or a file it does not have is still a 404.
      ["GET", "/index.html"],
      ["GET", "/ui/assets/nothing.js"],
      ["POST", "/v2/errands"],
      ["GET", "/v1/errand/x/y/z"],
    ] as const) {
      const answer = await app.call(method, path);
      expectError(answer, 404);
      expect(answer.headers.get("content-type")).toContain("application/json");
    }
    // A known path with a method it does not take is a 405, not a 404.
    const wrongMethod = await app.call("DELETE", "/v1/errands");
    expectError(wrongMethod, 405);
    expect(wrongMethod.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    app.close();
  });

  test("a malformed JSON body is a 400 with the error envelope on every route that takes one", async () => {
    const app = makeApp();
    const { id } = await active(app);
    for (const [method, path] of [
      ["POST", "/v1/errands"],
      ["PUT", `/v1/errand/${id}`],
      ["POST", `/v1/errand/${id}/log`],
      ["PUT", `/v1/errand/${id}/failed`],
      ["PUT", `/v1/errand/${id}/completed`],
      ["POST", "/v1/errands/update/type/work"],
    ] as const) {
      for (const text of ['{"name":', "{bad json}", "[1,2", "nul"]) {
        expectError(await app.call(method, path, text), 400);
      }
    }
    expect((await get(app, id)).status).toBe("active");
    app.close();
  });

  test("a body nested deeper than the server accepts is a 400, not a crash", async () => {
    const app = makeApp();
    const deep = `{"name":"a","type":"t","data":{"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`;
    expectError(await app.call("POST", "/v1/errands", deep), 400, /deeper/);
    const fine = `{"name":"a","type":"t","data":{"x":${"[".repeat(100)}${"]".repeat(100)}}}`;
    expect((await app.call("POST", "/v1/errands", fine)).status).toBe(200);
    app.close();
  });

  test("routes that take no body accept an empty one sent as JSON", async () => {
    const app = makeApp();
    await create(app, { type: "empty" });
    const json = { "content-type": "application/json" };
    const claimed = await app.call("POST", "/v1/errands/process/empty", "", json);
    expect(claimed.status).toBe(200);
    const retried = await app.call("POST", `/v1/errand/${claimed.body.results.id}/retry`, "", json);
    expect(retried.status).toBe(200);
    expect((await app.call("POST", "/v1/errands/clear/1h", "", json)).status).toBe(200);
    app.close();
  });
});

describe("create", () => {
  test("create answers the errand with its server-managed fields set", async () => {
    const app = makeApp();
    const errand = await create(app, { name: "Process file 7", type: "extract" });
    expect(errand.id).toMatch(UUID_V7);
    expect(errand).toEqual({
      id: errand.id,
      name: "Process file 7",
      type: "extract",
      options: {},
      created: app.clock.now(),
      status: "inactive",
      progress: 0,
      attempts: 0,
    });
    expect(await get(app, errand.id)).toEqual(errand);
    app.close();
  });

  test("values sent for server-managed fields on create are ignored", async () => {
    const app = makeApp();
    const errand = await create(app, {
      id: "my-own-id",
      status: "completed",
      created: 1,
      progress: 50,
      attempts: 7,
      logs: [{ severity: "INFO", message: "forged", timestamp: 1 }],
      results: { forged: true },
      started: 2,
      failed: 3,
      completed: 4,
      pipeline: "p",
    });
    expect(errand.id).toMatch(UUID_V7);
    expect(errand.status).toBe("inactive");
    expect(errand.created).toBe(app.clock.now());
    expect(errand.progress).toBe(0);
    expect(errand.attempts).toBe(0);
    for (const field of ["logs", "results", "started", "failed", "completed", "pipeline"]) {
      expect(errand).not.toHaveProperty(field);
    }
    expect((await app.call("GET", "/v1/errand/my-own-id")).status).toBe(404);
    app.close();
  });

  test("optional fields and zero options are omitted; progress and attempts are always present", async () => {
    const app = makeApp();
    const errand = await create(app, {
      options: { ttl: 0, retries: 0, priority: 0, deleteOnCompleted: false },
    });
    expect(Object.keys(errand).sort()).toEqual(
      ["attempts", "created", "id", "name", "options", "progress", "status", "type"].sort(),
    );
    expect(errand.options).toEqual({});
    app.close();
  });

  test("empty data and empty results are omitted, as v1", async () => {
    const app = makeApp();
    const created = await create(app, { type: "empty", data: {} });
    expect(created).not.toHaveProperty("data");
    expect((await app.call("POST", "/v1/errands/process/empty")).body.results).not.toHaveProperty(
      "data",
    );
    const done = await app.call("PUT", `/v1/errand/${created.id}/completed`, { results: {} });
    expect(done.body.results.status).toBe("completed");
    expect(done.body.results).not.toHaveProperty("results");
    expect(await get(app, created.id)).not.toHaveProperty("results");
    app.close();
  });

  test("options and data that are set are kept", async () => {
    const app = makeApp();
    const options = { ttl: 60, retries: 2, priority: 500, deleteOnCompleted: true };
    const data = { file: "s3://bucket/key", nested: { list: [1, "two", null] } };
    const errand = await create(app, { options, data });
    expect(errand.options).toEqual(options);
    expect(errand.data).toEqual(data);
    expect(await get(app, errand.id)).toEqual(errand);
    app.close();
  });

  test("options the schema does not name are ignored, not stored", async () => {
    const app = makeApp();
    const errand = await create(app, { options: { ttl: 5, colour: "red", shape: 1 } });
    expect(errand.options).toEqual({ ttl: 5 });
    expect((await get(app, errand.id)).options).toEqual({ ttl: 5 });
    app.close();
  });

  test("a negative ttl is refused; a ttl of 1 minute is accepted", async () => {
    const app = makeApp();
    const refused = await app.call("POST", "/v1/errands", {
      name: "a",
      type: "t",
      options: { ttl: -1 },
    });
    expectError(refused, 400, /options\.ttl/);
    expect((await create(app, { options: { ttl: 1 } })).options.ttl).toBe(1);
    app.close();
  });

  test("any positive ttl is accepted, as v1 clients send; one past every date never expires", async () => {
    const app = makeApp();
    const elevenYears = await active(app, { options: { ttl: 6_000_000 } });
    const never = await active(app, { options: { ttl: 1e300 } });
    expect(elevenYears.options.ttl).toBe(6_000_000);
    expect(never.options.ttl).toBe(1e300);
    app.clock.advance(6_000_000 * 60_000 - 1);
    await app.sweep();
    expect((await get(app, elevenYears.id)).status).toBe("active");
    app.clock.advance(1);
    await app.sweep();
    expect((await get(app, elevenYears.id)).status).toBe("failed");
    app.clock.advance(1000 * 365 * 24 * 3_600_000);
    await app.sweep();
    expect((await get(app, never.id)).status).toBe("active");
    app.close();
  });

  test("name and type are required non-empty strings; the error names the field", async () => {
    const app = makeApp();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ type: "t" }, /body\.name/],
      [{ name: "a" }, /body\.type/],
      [{ name: "", type: "t" }, /body\.name/],
      [{ name: "a", type: "" }, /body\.type/],
      [{ name: 7, type: "t" }, /body\.name/],
      [{ name: "a", type: ["t"] }, /body\.type/],
      [{ name: null, type: "t" }, /body\.name/],
    ];
    for (const [body, field] of cases) {
      expectError(await app.call("POST", "/v1/errands", body), 400, field);
    }
    expect((await app.call("GET", "/v1/errands")).body.results).toEqual([]);
    app.close();
  });

  test("a name longer than 1000 characters or a type longer than 255 is a 400 naming it", async () => {
    const app = makeApp();
    expectError(
      await app.call("POST", "/v1/errands", { name: "n".repeat(1001), type: "t" }),
      400,
      /body\.name/,
    );
    expectError(
      await app.call("POST", "/v1/errands", { name: "n", type: "t".repeat(256) }),
      400,
      /body\.type/,
    );
    expect(
      (await create(app, { name: "n".repeat(1000), type: "t".repeat(255) })).type,
    ).toHaveLength(255);
    app.close();
  });

  test("a type with a control character is a 400 on create, batch and pipeline; others pass", async () => {
    const app = makeApp();
    for (const type of ["a\u0000b", "line\nbreak", "tab\t", "bell\u0007", "del\u007f"]) {
      expectError(await app.call("POST", "/v1/errands", { name: "n", type }), 400, /body\.type/);
      const batch = {
        errands: [
          { name: "ok", type: "t" },
          { name: "n", type },
        ],
      };
      expectError(await app.call("POST", "/v1/errands/batch", batch), 400, /errands\.1\.type/);
      const pipeline = { name: "p", errands: [{ name: "n", type }] };
      expectError(await app.call("POST", "/v1/pipeline", pipeline), 400, /errands\.0\.type/);
    }
    expect((await app.call("GET", "/v1/errands")).body.results).toEqual([]);
    // Letters of any script, spaces and punctuation are no control characters.
    expect((await create(app, { type: "rapport mensuel — é/ü:v2 \u00a0😀" })).type).toBe(
      "rapport mensuel — é/ü:v2 \u00a0😀",
    );
    app.close();
  });

  test("a wrong type anywhere in the body is a 400 naming the field", async () => {
    const app = makeApp();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ options: { retries: "1" } }, /options\.retries/],
      [{ options: { retries: -1 } }, /options\.retries/],
      [{ options: { retries: 1.5 } }, /options\.retries/],
      [{ options: { ttl: "60" } }, /options\.ttl/],
      [{ options: { ttl: 1.5 } }, /options\.ttl/],
      [{ options: { priority: "high" } }, /options\.priority/],
      [{ options: { priority: null } }, /options\.priority/],
      [{ options: { deleteOnCompleted: "true" } }, /options\.deleteOnCompleted/],
      [{ options: [] }, /options/],
      [{ options: null }, /options/],
      [{ options: "ttl=5" }, /options/],
      [{ data: [] }, /body\.data/],
      [{ data: [1, 2] }, /body\.data/],
      [{ data: null }, /body\.data/],
      [{ data: "text" }, /body\.data/],
      [{ data: 42 }, /body\.data/],
    ];
    for (const [extra, field] of cases) {
      const answer = await app.call("POST", "/v1/errands", { name: "a", type: "t", ...extra });
      expect({ extra, status: answer.status }).toEqual({ extra, status: 400 });
      expectError(answer, 400, field);
    }
    for (const body of ["[]", "null", '"errand"', "42", "true"]) {
      expectError(await app.call("POST", "/v1/errands", body), 400, /body/);
    }
    expect((await app.call("GET", "/v1/errands")).body.results).toEqual([]);
    app.close();
  });
});

describe("get and list", () => {
  test("get answers one errand; an unknown id is 404 with the error envelope", async () => {
    const app = makeApp();
    const errand = await create(app);
    expect((await app.call("GET", `/v1/errand/${errand.id}`)).body.results).toEqual(errand);
    expectError(await app.call("GET", `/v1/errand/${crypto.randomUUID()}`), 404);
    expectError(await app.call("GET", "/v1/errand/not-an-id"), 404);
    app.close();
  });

  test("list answers every errand in creation order; an empty store is []", async () => {
    const app = makeApp();
    expect((await app.call("GET", "/v1/errands")).body).toEqual({ status: "OK", results: [] });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await create(app, { name: `e${i}` })).id);
      app.clock.advance(1);
    }
    const listed = await app.call("GET", "/v1/errands");
    expect(listed.status).toBe(200);
    expect(listed.body.status).toBe("OK");
    expect(listed.body.results.map((e: { id: string }) => e.id)).toEqual(ids);
    app.close();
  });

  test("list by status or type answers only the errands where the key equals the value", async () => {
    const app = makeApp();
    const a1 = await create(app, { type: "a" });
    const a2 = await create(app, { type: "a" });
    const b = await create(app, { type: "b" });
    await app.call("POST", "/v1/errands/process/a");
    const ids = async (path: string) =>
      (await app.call("GET", path)).body.results.map((e: { id: string }) => e.id);
    expect(await ids("/v1/errands/list/type/a")).toEqual([a1.id, a2.id]);
    expect(await ids("/v1/errands/list/type/b")).toEqual([b.id]);
    expect(await ids("/v1/errands/list/type/c")).toEqual([]);
    expect(await ids("/v1/errands/list/status/active")).toEqual([a1.id]);
    expect(await ids("/v1/errands/list/status/inactive")).toEqual([a2.id, b.id]);
    app.close();
  });

  test("the whole list streams as one JSON answer, also past its first page of rows", async () => {
    const app = makeApp();
    const ids: string[] = [];
    for (let batch = 0; batch < 3; batch++) {
      const specs = Array.from({ length: 450 }, (_, i) => ({
        name: `n${batch}-${i}`,
        type: i % 3 === 0 ? "third" : "rest",
      }));
      const made = await app.call("POST", "/v1/errands/batch", { errands: specs });
      ids.push(...made.body.results.map((e: { id: string }) => e.id));
    }
    const all = await app.call("GET", "/v1/errands/");
    expect(all.headers.get("content-type")).toStartWith("application/json");
    expect(all.body.results.map((e: { id: string }) => e.id)).toEqual(ids);
    const third = await app.call("GET", "/v1/errands/list/type/third");
    expect(third.headers.get("content-type")).toStartWith("application/json");
    expect(third.body.results.length).toBe(450);
    app.close();
  });

  test("list by a key other than status or type is 400 naming the key", async () => {
    const app = makeApp();
    await create(app);
    for (const key of ["name", "id", "priority", "STATUS"]) {
      expectError(await app.call("GET", `/v1/errands/list/${key}/work`), 400, /key/);
    }
    app.close();
  });
});

describe("paging", () => {
  const idsOf = (answer: Answer) => answer.body.results.map((e: { id: string }) => e.id);

  test("?limit answers a page in creation order and next, the ?after of the following page", async () => {
    const app = makeApp();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(app, { name: `e${i}` })).id);
    const first = await app.call("GET", "/v1/errands/?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.status).toBe("OK");
    expect(idsOf(first)).toEqual(ids.slice(0, 2));
    expect(first.body.next).toBe(ids[1]);
    const second = await app.call("GET", `/v1/errands/?limit=2&after=${first.body.next}`);
    expect(idsOf(second)).toEqual(ids.slice(2, 4));
    const last = await app.call("GET", `/v1/errands/?limit=2&after=${second.body.next}`);
    expect(idsOf(last)).toEqual(ids.slice(4));
    expect(last.body.next).toBeNull();
    // A page that ends exactly at the last errand says so too.
    expect((await app.call("GET", `/v1/errands/?limit=3&after=${ids[1]}`)).body.next).toBeNull();
    // ?after alone streams the rest.
    expect(idsOf(await app.call("GET", `/v1/errands/?after=${ids[2]}`))).toEqual(ids.slice(3));
    app.close();
  });

  test("the list by status or type pages the same way, within its matches", async () => {
    const app = makeApp();
    const a: string[] = [];
    for (let i = 0; i < 4; i++) {
      a.push((await create(app, { type: "a" })).id);
      await create(app, { type: "b" });
    }
    const page = await app.call("GET", "/v1/errands/list/type/a?limit=3");
    expect(idsOf(page)).toEqual(a.slice(0, 3));
    const rest = await app.call("GET", `/v1/errands/list/type/a?limit=3&after=${page.body.next}`);
    expect(idsOf(rest)).toEqual(a.slice(3));
    expect(rest.body.next).toBeNull();
    const inactive = await app.call("GET", "/v1/errands/list/status/inactive?limit=5");
    expect(inactive.body.results).toHaveLength(5);
    expect(inactive.body.next).not.toBeNull();
    app.close();
  });

  test("a limit that is not a whole number from 1 to 10000 is 400 naming it", async () => {
    const app = makeApp();
    for (const limit of ["0", "-1", "10001", "two", "1.5"]) {
      expectError(await app.call("GET", `/v1/errands/?limit=${limit}`), 400, /limit/);
    }
    expect((await app.call("GET", "/v1/errands/?limit=10000")).status).toBe(200);
    app.close();
  });
});

describe("progress", () => {
  test("progress updates an active errand and answers it", async () => {
    const app = makeApp();
    const { id } = await active(app);
    const answer = await app.call("PUT", `/v1/errand/${id}`, { progress: 42.5 });
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("OK");
    expect(answer.body.results.progress).toBe(42.5);
    expect((await get(app, id)).progress).toBe(42.5);
    app.close();
  });

  test("progress outside 0..100 or not a number is 400 and changes nothing", async () => {
    const app = makeApp();
    const { id } = await active(app);
    for (const progress of [-1, 100.5, 101, "50", null]) {
      expectError(await app.call("PUT", `/v1/errand/${id}`, { progress }), 400, /progress/);
    }
    expectError(await app.call("PUT", `/v1/errand/${id}`, {}), 400, /progress/);
    expect((await get(app, id)).progress).toBe(0);
    for (const progress of [0, 100]) {
      expect((await app.call("PUT", `/v1/errand/${id}`, { progress })).status).toBe(200);
    }
    app.close();
  });

  test("progress of an errand that is not active is 409; of an unknown one 404", async () => {
    const app = makeApp();
    const inactive = await create(app);
    expectError(await app.call("PUT", `/v1/errand/${inactive.id}`, { progress: 10 }), 409);
    const done = await active(app);
    await app.call("PUT", `/v1/errand/${done.id}/completed`, {});
    expectError(await app.call("PUT", `/v1/errand/${done.id}`, { progress: 10 }), 409);
    expect((await get(app, done.id)).progress).toBe(100);
    expectError(await app.call("PUT", `/v1/errand/${crypto.randomUUID()}`, { progress: 10 }), 404);
    app.close();
  });
});

describe("log", () => {
  test("a log entry is appended with its severity, message and the time", async () => {
    const app = makeApp();
    const { id } = await active(app);
    app.clock.advance(1000);
    for (const severity of ["INFO", "WARNING", "ERROR"]) {
      const answer = await app.call("POST", `/v1/errand/${id}/log`, {
        severity,
        message: `a ${severity} line`,
      });
      expect(answer.status).toBe(200);
      expect(answer.body.results.logs.at(-1)).toEqual({
        severity,
        message: `a ${severity} line`,
        timestamp: app.clock.now(),
      });
    }
    expect((await get(app, id)).logs.map((l: { message: string }) => l.message)).toEqual([
      "Started!",
      "a INFO line",
      "a WARNING line",
      "a ERROR line",
    ]);
    app.close();
  });

  test("severity must be INFO, WARNING or ERROR, and both fields are required", async () => {
    const app = makeApp();
    const { id } = await active(app);
    for (const body of [
      { severity: "DEBUG", message: "m" },
      { severity: "info", message: "m" },
      { message: "m" },
    ]) {
      expectError(await app.call("POST", `/v1/errand/${id}/log`, body), 400, /severity/);
    }
    for (const body of [{ severity: "INFO" }, { severity: "INFO", message: 5 }]) {
      expectError(await app.call("POST", `/v1/errand/${id}/log`, body), 400, /message/);
    }
    expect((await get(app, id)).logs).toHaveLength(1);
    app.close();
  });

  test("logging to an errand that is not active is 409; to an unknown one 404", async () => {
    const app = makeApp();
    const inactive = await create(app);
    const line = { severity: "INFO", message: "m" };
    expectError(await app.call("POST", `/v1/errand/${inactive.id}/log`, line), 409);
    expect(await get(app, inactive.id)).not.toHaveProperty("logs");
    expectError(await app.call("POST", `/v1/errand/${crypto.randomUUID()}/log`, line), 404);
    app.close();
  });

  test("an errand keeps only the newest ERRANDS_MAX_LOGS log entries", async () => {
    const app = makeApp({ env: { ERRANDS_MAX_LOGS: "3" } });
    const { id } = await active(app);
    for (let i = 1; i <= 4; i++) {
      await app.call("POST", `/v1/errand/${id}/log`, { severity: "INFO", message: `line ${i}` });
    }
    const messages = (await get(app, id)).logs.map((l: { message: string }) => l.message);
    expect(messages).toEqual(["line 2", "line 3", "line 4"]);
    await app.call("PUT", `/v1/errand/${id}/completed`, {});
    const after = (await get(app, id)).logs.map((l: { message: string }) => l.message);
    expect(after).toEqual(["line 3", "line 4", "Completed!"]);
    app.close();
  });
});

describe("failed", () => {
  test("failing an errand without retries sets failed, logs the reason as ERROR, progress 0", async () => {
    const app = makeApp();
    const { id } = await active(app);
    await app.call("PUT", `/v1/errand/${id}`, { progress: 60 });
    app.clock.advance(5000);
    const answer = await app.call("PUT", `/v1/errand/${id}/failed`, { reason: "disk full" });
    expect(answer.status).toBe(200);
    const errand = answer.body.results;
    expect(errand.status).toBe("failed");
    expect(errand.failed).toBe(app.clock.now());
    expect(errand.progress).toBe(0);
    expect(errand.logs.at(-1)).toEqual({
      severity: "ERROR",
      message: "disk full",
      timestamp: app.clock.now(),
    });
    expect(await get(app, id)).toEqual(errand);
    app.close();
  });

  test("a failure re-queues the errand while attempts ≤ retries, then fails it", async () => {
    const app = makeApp();
    const { id } = await create(app, { type: "flaky", options: { retries: 2 } });
    const statuses: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claimed = await app.call("POST", "/v1/errands/process/flaky");
      expect(claimed.body.results.id).toBe(id);
      expect(claimed.body.results.attempts).toBe(attempt);
      const failed = await app.call("PUT", `/v1/errand/${id}/failed`, { reason: `try ${attempt}` });
      expect(failed.body.results.progress).toBe(0);
      expect(failed.body.results.failed).toBe(app.clock.now());
      statuses.push(failed.body.results.status);
      app.clock.advance(1000);
    }
    expect(statuses).toEqual(["inactive", "inactive", "failed"]);
    expect((await app.call("POST", "/v1/errands/process/flaky")).status).toBe(404);
    const errors = (await get(app, id)).logs.filter(
      (l: { severity: string }) => l.severity === "ERROR",
    );
    expect(errors.map((l: { message: string }) => l.message)).toEqual(["try 1", "try 2", "try 3"]);
    app.close();
  });

  test("a reason or log message of any length is recorded, cut past MAX_LOG_MESSAGE", async () => {
    const app = makeApp();
    const { id } = await active(app);
    const trace = "at frame\n".repeat(5000); // 45,000 characters
    expect(
      (await app.call("POST", `/v1/errand/${id}/log`, { severity: "WARNING", message: trace }))
        .status,
    ).toBe(200);
    const failed = await app.call("PUT", `/v1/errand/${id}/failed`, { reason: trace });
    expect(failed.status).toBe(200);
    expect(failed.body.results.status).toBe("failed");
    const kept = `${trace.slice(0, MAX_LOG_MESSAGE)}… [${trace.length - MAX_LOG_MESSAGE} more characters cut]`;
    expect(failed.body.results.logs.slice(-2).map((l: { message: string }) => l.message)).toEqual([
      kept,
      kept,
    ]);
    app.close();
  });

  test("a cut message never ends in half a character", async () => {
    const app = makeApp();
    const { id } = await active(app);
    const message = `x${"😀".repeat(6000)}`; // the cut falls inside a surrogate pair
    await app.call("POST", `/v1/errand/${id}/log`, { severity: "INFO", message });
    const kept = (await app.call("GET", `/v1/errand/${id}`)).body.results.logs.at(-1).message;
    expect(kept.isWellFormed()).toBe(true);
    expect(kept).not.toContain("\uFFFD"); // what storing half a pair would leave
    expect(kept).toStartWith(message.slice(0, MAX_LOG_MESSAGE - 1));
    app.close();
  });

  test("failing needs a reason; an unknown errand is 404", async () => {
    const app = makeApp();
    const { id } = await active(app);
    expectError(await app.call("PUT", `/v1/errand/${id}/failed`, {}), 400, /reason/);
    expectError(await app.call("PUT", `/v1/errand/${id}/failed`, { reason: 1 }), 400, /reason/);
    expect((await get(app, id)).status).toBe("active");
    expectError(
      await app.call("PUT", `/v1/errand/${crypto.randomUUID()}/failed`, { reason: "r" }),
      404,
    );
    app.close();
  });
});

describe("completed", () => {
  test("completing stores the results, sets progress 100 and completed, logs Completed!", async () => {
    const app = makeApp();
    const { id } = await active(app);
    app.clock.advance(2000);
    const results = { rows: 42, files: ["a", "b"] };
    const answer = await app.call("PUT", `/v1/errand/${id}/completed`, { results });
    expect(answer.status).toBe(200);
    const errand = answer.body.results;
    expect(errand.status).toBe("completed");
    expect(errand.results).toEqual(results);
    expect(errand.progress).toBe(100);
    expect(errand.completed).toBe(app.clock.now());
    expect(errand.logs.at(-1)).toEqual({
      severity: "INFO",
      message: "Completed!",
      timestamp: app.clock.now(),
    });
    expect(await get(app, id)).toEqual(errand);
    app.close();
  });

  test("completing without a body works, and leaves results out", async () => {
    const app = makeApp();
    const { id } = await active(app);
    const answer = await app.call("PUT", `/v1/errand/${id}/completed`);
    expect(answer.status).toBe(200);
    expect(answer.body.results.status).toBe("completed");
    expect(answer.body.results).not.toHaveProperty("results");
    app.close();
  });

  test("a body that is not an object is refused, and the errand stays active", async () => {
    const app = makeApp();
    const { id } = await active(app);
    for (const body of ["1", '"x"', "null", "true", "[]", '"{\\"results\\":{\\"rows\\":3}}"']) {
      const done = await app.call("PUT", `/v1/errand/${id}/completed`, body);
      expectError(done, 400, /body/);
      const beat = await app.call("POST", `/v1/errand/${id}/heartbeat`, body);
      expectError(beat, 400, /body/);
    }
    expect((await get(app, id)).status).toBe("active");
    app.close();
  });

  test("results must be a JSON object", async () => {
    const app = makeApp();
    const { id } = await active(app);
    for (const results of [[1], "done", 3, null]) {
      expectError(await app.call("PUT", `/v1/errand/${id}/completed`, { results }), 400, /results/);
    }
    expect((await get(app, id)).status).toBe("active");
    app.close();
  });

  test("with deleteOnCompleted the completed errand is answered, then it is gone", async () => {
    const app = makeApp();
    const { id } = await active(app, { options: { deleteOnCompleted: true } });
    const answer = await app.call("PUT", `/v1/errand/${id}/completed`, { results: { ok: 1 } });
    expect(answer.status).toBe(200);
    expect(answer.body.results.id).toBe(id);
    expect(answer.body.results.status).toBe("completed");
    expect(answer.body.results.results).toEqual({ ok: 1 });
    expectError(await app.call("GET", `/v1/errand/${id}`), 404);
    app.close();
  });

  test("an operator may complete a failed errand, as in v1", async () => {
    const app = makeApp();
    const { id } = await active(app);
    await app.call("PUT", `/v1/errand/${id}/failed`, { reason: "r" });
    const answer = await app.call("PUT", `/v1/errand/${id}/completed`, {});
    expect(answer.status).toBe(200);
    expect(answer.body.results.status).toBe("completed");
    app.close();
  });

  test("completing an unknown errand is 404", async () => {
    const app = makeApp();
    expectError(await app.call("PUT", `/v1/errand/${crypto.randomUUID()}/completed`, {}), 404);
    app.close();
  });
});

describe("blocked errands", () => {
  test("a blocked errand cannot be failed, completed or retried (409)", async () => {
    const app = makeApp();
    const { id } = await create(app, { type: "gated" });
    await app.call("POST", "/v1/errands/update/type/gated", { status: "blocked" });
    expectError(await app.call("PUT", `/v1/errand/${id}/failed`, { reason: "r" }), 409);
    expectError(await app.call("PUT", `/v1/errand/${id}/completed`, {}), 409);
    expectError(await app.call("POST", `/v1/errand/${id}/retry`), 409);
    const errand = await get(app, id);
    expect(errand.status).toBe("blocked");
    expect(errand).not.toHaveProperty("logs");
    app.close();
  });
});

describe("retry", () => {
  test("retrying a failed errand queues it again with progress 0 and logs Retrying!", async () => {
    const app = makeApp();
    const { id } = await active(app);
    await app.call("PUT", `/v1/errand/${id}/failed`, { reason: "r" });
    app.clock.advance(10);
    const answer = await app.call("POST", `/v1/errand/${id}/retry`);
    expect(answer.status).toBe(200);
    expect(answer.body.results.status).toBe("inactive");
    expect(answer.body.results.progress).toBe(0);
    expect(answer.body.results.logs.at(-1)).toEqual({
      severity: "INFO",
      message: "Retrying!",
      timestamp: app.clock.now(),
    });
    const again = await app.call("POST", `/v1/errands/process/${answer.body.results.type}`);
    expect(again.body.results.id).toBe(id);
    expect(again.body.results.attempts).toBe(2);
    app.close();
  });

  test("retrying a completed errand queues it again", async () => {
    const app = makeApp();
    const { id } = await active(app);
    await app.call("PUT", `/v1/errand/${id}/completed`, {});
    const answer = await app.call("POST", `/v1/errand/${id}/retry`);
    expect(answer.status).toBe(200);
    expect(answer.body.results.status).toBe("inactive");
    expect(answer.body.results.progress).toBe(0);
    app.close();
  });

  test("retrying an inactive errand is 409; an unknown one 404", async () => {
    const app = makeApp();
    const { id } = await create(app);
    expectError(await app.call("POST", `/v1/errand/${id}/retry`), 409);
    expect(await get(app, id)).not.toHaveProperty("logs");
    expectError(await app.call("POST", `/v1/errand/${crypto.randomUUID()}/retry`), 404);
    app.close();
  });
});

describe("delete", () => {
  test("delete removes the errand and answers {status: OK}", async () => {
    const app = makeApp();
    const { id } = await active(app);
    const answer = await app.call("DELETE", `/v1/errand/${id}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "OK" });
    expectError(await app.call("GET", `/v1/errand/${id}`), 404);
    app.close();
  });

  test("deleting an unknown errand also answers {status: OK}, as v1", async () => {
    const app = makeApp();
    const answer = await app.call("DELETE", `/v1/errand/${crypto.randomUUID()}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "OK" });
    app.close();
  });

  test("an errand of a pipeline cannot be deleted on its own (409)", async () => {
    const app = makeApp();
    const made = await app.call("POST", "/v1/pipeline/", {
      name: "p",
      errands: [{ name: "job", type: "work" }],
    });
    const pipeline = made.body.results.id;
    const { id } = made.body.results.errands[0];
    expectError(await app.call("DELETE", `/v1/errand/${id}`), 409, /pipeline/);
    expect((await get(app, id)).pipeline).toBe(pipeline);
    app.close();
  });
});

describe("bulk update", () => {
  test("{status} sets every matching errand to that status and answers the count", async () => {
    const app = makeApp();
    const a1 = await create(app, { type: "a" });
    const a2 = await create(app, { type: "a" });
    const b = await create(app, { type: "b" });
    const answer = await app.call("POST", "/v1/errands/update/type/a", { status: "failed" });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "OK", count: 2 });
    expect((await get(app, a1.id)).status).toBe("failed");
    expect((await get(app, a2.id)).status).toBe("failed");
    expect((await get(app, b.id)).status).toBe("inactive");
    const byStatus = await app.call("POST", "/v1/errands/update/status/failed", {
      status: "inactive",
    });
    expect(byStatus.body).toEqual({ status: "OK", count: 2 });
    expect((await get(app, a1.id)).status).toBe("inactive");
    app.close();
  });

  test("the service itself refuses a bulk update to scheduled: it has no time to come due", async () => {
    const app = makeApp();
    const e = await create(app, { type: "a" });
    const refused = await app.errands.updateWhere({ type: "a" }, { status: "scheduled" }).then(
      () => null,
      (error: { status: number; detail: string }) => error,
    );
    expect(refused?.status).toBe(400);
    expect(refused?.detail).toContain("scheduled needs a time");
    expect((await get(app, e.id)).status).toBe("inactive");
    const answer = await app.call("POST", "/v1/errands/update/type/a", { status: "scheduled" });
    expectError(answer, 400, /scheduled/);
    app.close();
  });

  test("setting completed or failed in bulk stamps when, so clear can find them", async () => {
    const app = makeApp();
    const a = await create(app, { type: "a" });
    const b = await create(app, { type: "b" });
    app.clock.advance(1000);
    await app.call("POST", "/v1/errands/update/type/a", { status: "completed" });
    await app.call("POST", "/v1/errands/update/type/b", { status: "failed" });
    expect((await get(app, a.id)).completed).toBe(app.clock.now());
    expect((await get(app, b.id)).failed).toBe(app.clock.now());
    app.clock.advance(2 * 3_600_000);
    const cleared = await app.call("POST", "/v1/errands/clear/1h");
    expect(cleared.body.results.map((e: { id: string }) => e.id).sort()).toEqual(
      [a.id, b.id].sort(),
    );
    app.close();
  });

  test("an invalid status is 400 and changes nothing", async () => {
    const app = makeApp();
    const a1 = await create(app, { type: "a" });
    const a2 = await create(app, { type: "a" });
    for (const status of ["done", "ACTIVE", "", 3, null]) {
      const answer = await app.call("POST", "/v1/errands/update/type/a", { status });
      expectError(answer, 400, /status/);
    }
    expect(await get(app, a1.id)).toEqual(a1);
    expect(await get(app, a2.id)).toEqual(a2);
    app.close();
  });

  test("{delete: true} deletes every matching errand and answers the count", async () => {
    const app = makeApp();
    const a1 = await create(app, { type: "a" });
    const a2 = await create(app, { type: "a" });
    const b = await create(app, { type: "b" });
    const answer = await app.call("POST", "/v1/errands/update/type/a", { delete: true });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "OK", count: 2 });
    expectError(await app.call("GET", `/v1/errand/${a1.id}`), 404);
    expectError(await app.call("GET", `/v1/errand/${a2.id}`), 404);
    expect((await get(app, b.id)).status).toBe("inactive");
    app.close();
  });

  test("a body that is neither {status} nor {delete: true}, or another key, is 400", async () => {
    const app = makeApp();
    const a = await create(app, { type: "a" });
    for (const body of [
      {},
      { delete: false },
      { status: "failed", delete: true },
      { delete: "yes" },
    ]) {
      expectError(await app.call("POST", "/v1/errands/update/type/a", body), 400);
    }
    expectError(
      await app.call("POST", "/v1/errands/update/name/job", { status: "failed" }),
      400,
      /key/,
    );
    expect(await get(app, a.id)).toEqual(a);
    app.close();
  });
});

describe("clear", () => {
  test("clear/1h keeps an errand finished 10 minutes ago and deletes one finished 2 hours ago", async () => {
    const app = makeApp();
    const old = await active(app);
    const recent = await active(app);
    const waiting = await create(app);
    const running = await active(app);
    await app.call("PUT", `/v1/errand/${old.id}/completed`, { results: { n: 1 } });
    app.clock.advance(110 * 60_000);
    await app.call("PUT", `/v1/errand/${recent.id}/completed`, {});
    app.clock.advance(10 * 60_000);

    const answer = await app.call("POST", "/v1/errands/clear/1h");
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("OK");
    expect(answer.body.results).toHaveLength(1);
    expect(answer.body.results[0].id).toBe(old.id);
    expect(answer.body.results[0].status).toBe("completed");
    expect(answer.body.results[0].results).toEqual({ n: 1 });

    expectError(await app.call("GET", `/v1/errand/${old.id}`), 404);
    expect((await get(app, recent.id)).status).toBe("completed");
    expect((await get(app, waiting.id)).status).toBe("inactive");
    expect((await get(app, running.id)).status).toBe("active");
    app.close();
  });

  test("a large clear deletes in batches of its own transactions and answers every errand", async () => {
    const app = makeApp();
    for (let i = 0; i < 3; i++) {
      const specs = Array.from({ length: 850 }, (_, n) => ({ name: `old${i}-${n}`, type: "bulk" }));
      await app.call("POST", "/v1/errands/batch", { errands: specs });
    }
    await app.call("POST", "/v1/errands/update/type/bulk", { status: "completed" });
    app.clock.advance(2 * 3_600_000);
    const kept = await create(app, { type: "bulk" });
    const commits = app.commits();
    const cleared = await app.call("POST", "/v1/errands/clear/1h");
    expect(cleared.status).toBe(200);
    expect(cleared.body.results).toHaveLength(2550);
    expect(new Set(cleared.body.results.map((e: { id: string }) => e.id)).size).toBe(2550);
    // Three batches and a last, empty look: never one long transaction.
    expect(app.commits() - commits).toBeGreaterThanOrEqual(3);
    const left = (await app.call("GET", "/v1/errands/list/type/bulk")).body.results;
    expect(left.map((e: { id: string }) => e.id)).toEqual([kept.id]);
    app.close();
  });

  test("a client that stops reading a clear's answer does not stop the clear", async () => {
    const app = makeApp();
    for (let i = 0; i < 3; i++) {
      const specs = Array.from({ length: 1000 }, (_, n) => ({ name: `c${i}-${n}`, type: "gone" }));
      await app.call("POST", "/v1/errands/batch", { errands: specs });
    }
    await app.call("POST", "/v1/errands/update/type/gone", { status: "failed" });
    app.clock.advance(2 * 3_600_000);
    const res = await app.app.handle(
      new Request("http://localhost/v1/errands/clear/1h", { method: "POST" }),
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the start of the answer, then the client leaves
    await reader.cancel();
    const left = async () => (await app.call("GET", "/v1/errands/list/type/gone")).body.results;
    for (let i = 0; i < 500 && (await left()).length > 0; i++) await Bun.sleep(5);
    expect(await left()).toEqual([]);
    app.close();
  });

  /** An app with `count` errands failed two hours ago, of type "old". */
  async function withOld(count: number, options: Parameters<typeof makeApp>[0] = {}) {
    const app = makeApp(options);
    for (let made = 0; made < count; made += 1000) {
      const specs = Array.from({ length: Math.min(1000, count - made) }, (_, n) => ({
        name: `o${made + n}`,
        type: "old",
      }));
      await app.call("POST", "/v1/errands/batch", { errands: specs });
    }
    await app.call("POST", "/v1/errands/update/type/old", { status: "failed" });
    app.clock.advance(2 * 3_600_000);
    const left = async () =>
      (await app.call("GET", "/v1/errands/list/type/old")).body.results.length as number;
    const clear = () =>
      app.app.handle(new Request("http://localhost/v1/errands/clear/1h", { method: "POST" }));
    return { app, left, clear };
  }

  test("a client that leaves before reading anything does not stop the clear either", async () => {
    const { app, left, clear } = await withOld(3000);
    await (await clear()).body?.cancel();
    for (let i = 0; i < 500 && (await left()) > 0; i++) await Bun.sleep(5);
    expect(await left()).toBe(0);
    app.close();
  });

  // Fails a batch by failing the SQLite engine's fsync of its commit.
  test.skipIf(onPostgres)(
    "a batch that fails ends the clear: its answer is cut short, and no batch follows",
    async () => {
      let syncs = 0;
      let failAt = Number.POSITIVE_INFINITY;
      const { app, left, clear } = await withOld(3000, {
        flush: async () => {
          if (++syncs === failAt) throw new Error("EIO");
        },
      });
      failAt = syncs + 2; // the second batch's sync
      const text = await (await clear()).text().catch(() => "cut");
      expect(() => JSON.parse(text)).toThrow();
      expect(await left()).toBe(1000);
      app.close();
    },
  );

  test("a shutdown stops a clear whose client has left at its current batch", async () => {
    const { app, clear } = await withOld(5000);
    const reader = (await clear()).body?.getReader();
    await reader?.read();
    const cancelled = reader?.cancel(); // the clear goes on without its client…
    await app.close(); // …until the shutdown
    await cancelled;
    const again = makeApp({ dir: app.dir });
    const left = (await again.call("GET", "/v1/errands/list/type/old")).body.results.length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(5000);
    again.close();
  });

  test("clear deletes failed errands too, and reads Go durations in their units", async () => {
    const app = makeApp();
    const failed = await active(app);
    const later = await active(app);
    await app.call("PUT", `/v1/errand/${failed.id}/failed`, { reason: "r" });
    app.clock.advance(20_000);
    await app.call("PUT", `/v1/errand/${later.id}/completed`, {});
    app.clock.advance(80_000);
    // failed finished 100 s ago, later 80 s ago.
    expect((await app.call("POST", "/v1/errands/clear/2m")).body.results).toEqual([]);
    expect(
      (await app.call("POST", "/v1/errands/clear/1m30s")).body.results.map(
        (e: { id: string }) => e.id,
      ),
    ).toEqual([failed.id]);
    expect((await app.call("POST", "/v1/errands/clear/80001ms")).body.results).toEqual([]);
    expect(
      (await app.call("POST", "/v1/errands/clear/1s")).body.results.map(
        (e: { id: string }) => e.id,
      ),
    ).toEqual([later.id]);
    app.close();
  });

  test("clear with a duration that is not Go syntax is 400 and deletes nothing", async () => {
    const app = makeApp();
    const done = await active(app);
    await app.call("PUT", `/v1/errand/${done.id}/completed`, {});
    app.clock.advance(3 * 3_600_000);
    for (const duration of ["1x", "abc", "1h30", "h", "1d", "-1h", "1 h"]) {
      const answer = await app.call("POST", `/v1/errands/clear/${encodeURIComponent(duration)}`);
      expectError(answer, 400);
    }
    expect((await get(app, done.id)).status).toBe("completed");
    app.close();
  });
});
