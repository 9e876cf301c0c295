// The lists a dashboard reads (README, The API): scheduled errands soonest first, errands by
// name prefix, and errands by status and type together, as a client sees them, and the indexes
// that keep them cheap.

import { afterAll, describe, expect, test } from "bun:test";
import type { ErrandFilter } from "../src/store/driver.ts";
import { ReadStatements } from "../src/store/sqlite/access.ts";
import { ErrandWrites } from "../src/store/sqlite/errands.ts";
import {
  appsPerTest,
  explainingTx,
  onPostgres,
  removeTempDirs,
  schemaConnection,
  sqlitePlanOf,
  type TestApp,
  withExplainedTx,
} from "./harness.ts";

afterAll(removeTempDirs);

const app = appsPerTest();

async function create(a: TestApp, spec: Record<string, unknown>) {
  const answer = await a.call("POST", "/v1/errands", { type: "work", ...spec });
  expect(answer.status).toBe(200);
  return answer.body.results as { id: string; name: string; status: string };
}

/** Every page of a list, following `next` from the first: the ids of each page. */
async function allPages(a: TestApp, path: string, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let after: string | null = null;
  const glue = path.includes("?") ? "&" : "?";
  do {
    const cursor: string = after === null ? "" : `&after=${encodeURIComponent(after)}`;
    const answer = await a.call("GET", `${path}${glue}limit=${limit}${cursor}`);
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("OK");
    pages.push(answer.body.results.map((e: { id: string }) => e.id));
    after = answer.body.next;
    expect(pages.length).toBeLessThan(100);
  } while (after !== null);
  return pages;
}

describe("scheduled errands", () => {
  test("the scheduled list answers scheduled errands only, soonest first, with their logs", async () => {
    const a = app();
    const now = a.clock.now();
    const late = await create(a, { name: "late", options: { runAt: now + 60_000 } });
    await create(a, { name: "now" });
    const soon = await create(a, { name: "soon", options: { delay: 1_000 } });
    // A failure with a backoff waits as a scheduled errand too.
    const retried = await create(a, {
      name: "retried",
      type: "flaky",
      options: { retries: 1, backoff: { type: "fixed", delay: 30_000 } },
    });
    expect((await a.call("POST", "/v1/errands/process/flaky")).status).toBe(200);
    const failed = await a.call("PUT", `/v1/errand/${retried.id}/failed`, { reason: "boom" });
    expect(failed.body.results.status).toBe("scheduled");

    const answer = await a.call("GET", "/v1/errands/scheduled");
    expect(answer.status).toBe(200);
    expect(answer.body.next).toBeNull();
    expect(answer.body.results.map((e: { id: string }) => e.id)).toEqual([
      soon.id,
      retried.id,
      late.id,
    ]);
    const withLogs = answer.body.results[1];
    expect(withLogs.status).toBe("scheduled");
    expect(withLogs.logs.map((l: { message: string }) => l.message)).toContain("boom");
  });

  test("the scheduled list pages with its cursor to the end, equal times by creation", async () => {
    const a = app();
    const now = a.clock.now();
    const created: Array<{ id: string; at: number }> = [];
    for (let i = 0; i < 7; i++) {
      // Three share a time: they come in creation (id) order.
      const at = now + 1_000 * (i < 3 ? 5 : 7 - i);
      created.push({ id: (await create(a, { name: `s${i}`, options: { runAt: at } })).id, at });
    }
    const expected = [...created]
      .sort((x, y) => x.at - y.at || (x.id < y.id ? -1 : 1))
      .map((e) => e.id);
    const pages = await allPages(a, "/v1/errands/scheduled", 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(expected);
    const first = await a.call("GET", "/v1/errands/scheduled?limit=2");
    expect(first.body.next).toMatch(/^\d+:/);
  });

  test("the scheduled list takes 100 a page when no limit is given", async () => {
    const a = app();
    const now = a.clock.now();
    const errands = Array.from({ length: 101 }, (_, i) => ({
      name: `s${i}`,
      type: "work",
      options: { runAt: now + 1000 + i },
    }));
    expect((await a.call("POST", "/v1/errands/batch", { errands })).status).toBe(200);
    const answer = await a.call("GET", "/v1/errands/scheduled");
    expect(answer.body.results).toHaveLength(100);
    const rest = await a.call(
      "GET",
      `/v1/errands/scheduled?after=${encodeURIComponent(answer.body.next)}`,
    );
    expect(rest.body.results.map((e: { name: string }) => e.name)).toEqual(["s100"]);
    expect(rest.body.next).toBeNull();
  });

  test("a bad cursor or limit on the scheduled list is 400 with the error envelope", async () => {
    const a = app();
    for (const query of [
      "after=nonsense",
      "after=12",
      "after=12:",
      "after=-1:x",
      "after=1.5:x",
      "after=99999999999999999:x",
      `after=${"1".repeat(101)}`,
      "limit=0",
      "limit=10001",
      "limit=ten",
    ]) {
      const answer = await a.call("GET", `/v1/errands/scheduled?${query}`);
      expect({ query, status: answer.status }).toEqual({ query, status: 400 });
      expect(typeof answer.body.message).toBe("string");
      expect(typeof answer.body.error).toBe("string");
    }
    // A cursor past every errand is an empty last page.
    const past = await a.call("GET", "/v1/errands/scheduled?after=9000000000000000:x");
    expect(past.body).toEqual({ status: "OK", results: [], next: null });
  });
});

describe("search by name prefix", () => {
  test("?name= lists the errands whose name starts with it, in creation order", async () => {
    const a = app();
    const names = ["report-2", "report-1", "Report-3", "repo", "a report", "report"];
    const ids = new Map<string, string>();
    for (const name of names) ids.set(name, (await create(a, { name })).id);
    const streamed = await a.call("GET", "/v1/errands?name=report");
    expect(streamed.status).toBe(200);
    expect(streamed.body.results.map((e: { name: string }) => e.name)).toEqual([
      "report-2",
      "report-1",
      "report",
    ]);
    const pages = await allPages(a, "/v1/errands?name=repo", 2);
    expect(pages.map((p) => p.length)).toEqual([2, 2]);
    expect(pages.flat()).toEqual(
      ["report-2", "report-1", "repo", "report"].map((n) => ids.get(n) ?? ""),
    );
  });

  test("?name= takes %, _, \\ and characters beyond ASCII literally", async () => {
    const a = app();
    const names = ["50%_off", "50%x", "50a_off", "a\\b", "axb", "über", "uber", "日本語", "😀!"];
    for (const name of names) await create(a, { name });
    const search = async (prefix: string) => {
      const answer = await a.call("GET", `/v1/errands?name=${encodeURIComponent(prefix)}`);
      expect(answer.status).toBe(200);
      return answer.body.results.map((e: { name: string }) => e.name);
    };
    expect(await search("50%")).toEqual(["50%_off", "50%x"]);
    expect(await search("50%_")).toEqual(["50%_off"]);
    expect(await search("a\\")).toEqual(["a\\b"]);
    expect(await search("ü")).toEqual(["über"]);
    expect(await search("日本")).toEqual(["日本語"]);
    expect(await search("😀")).toEqual(["😀!"]);
    expect(await search("%")).toEqual([]);
  });

  test("an empty or too long name prefix is 400", async () => {
    const a = app();
    for (const query of ["name=", `name=${"n".repeat(1001)}`]) {
      const answer = await a.call("GET", `/v1/errands?${query}`);
      expect(answer.status).toBe(400);
      expect(typeof answer.body.message).toBe("string");
    }
    expect((await a.call("GET", `/v1/errands?name=${"n".repeat(1000)}`)).status).toBe(200);
  });
});

/** Errands of types a, b and c, each inactive, failed or completed, in creation order. */
async function mixed(a: TestApp) {
  const made: Array<{ id: string; name: string; type: string; status: string }> = [];
  for (let i = 0; i < 18; i++) {
    const type = ["a", "b", "c"][i % 3] ?? "a";
    const name = `m${i}`;
    const { id } = await create(a, { name, type });
    const status = ["inactive", "failed", "completed"][Math.floor(i / 2) % 3] ?? "inactive";
    if (status === "failed") {
      expect((await a.call("PUT", `/v1/errand/${id}/failed`, { reason: "no" })).status).toBe(200);
    }
    if (status === "completed") {
      expect((await a.call("PUT", `/v1/errand/${id}/completed`, {})).status).toBe(200);
    }
    made.push({ id, name, type, status });
  }
  return made;
}

describe("status and type together", () => {
  test("?status= and ?type=, alone or together, list the matching errands streamed and paged", async () => {
    const a = app();
    const made = await mixed(a);
    const filters: Array<{ status?: string; type?: string }> = [
      {},
      { status: "failed" },
      { type: "b" },
      { status: "failed", type: "a" },
      { status: "completed", type: "c" },
      { status: "inactive", type: "b" },
      { status: "active", type: "a" },
      { status: "failed", type: "nobody" },
    ];
    for (const filter of filters) {
      const expected = made
        .filter(
          (e) =>
            (filter.status === undefined || e.status === filter.status) &&
            (filter.type === undefined || e.type === filter.type),
        )
        .map((e) => e.id);
      const query = new URLSearchParams(filter as Record<string, string>).toString();
      const streamed = await a.call("GET", `/v1/errands?${query}`);
      expect(streamed.status).toBe(200);
      expect({ filter, ids: streamed.body.results.map((e: { id: string }) => e.id) }).toEqual({
        filter,
        ids: expected,
      });
      expect(streamed.body.next).toBeUndefined();
      const pages = await allPages(a, `/v1/errands?${query}`, 2);
      expect({ filter, ids: pages.flat() }).toEqual({ filter, ids: expected });
      // Full pages until the last; an empty list is one empty page.
      expect(pages.slice(0, -1).every((page) => page.length === 2)).toBe(true);
    }
    const both = await a.call("GET", "/v1/errands?status=failed&type=a");
    for (const e of both.body.results) expect(e).toMatchObject({ status: "failed", type: "a" });
    expect(both.body.results[0].logs.map((l: { message: string }) => l.message)).toEqual(["no"]);
  });

  test("a cursor of the combined filter resumes after it, whether or not it matches", async () => {
    const a = app();
    const made = await mixed(a);
    const failedA = made.filter((e) => e.status === "failed" && e.type === "a").map((e) => e.id);
    expect(failedA.length).toBeGreaterThan(1);
    const first = failedA[0] ?? "";
    const rest = await a.call("GET", `/v1/errands?type=a&status=failed&limit=100&after=${first}`);
    expect(rest.body.results.map((e: { id: string }) => e.id)).toEqual(failedA.slice(1));
    expect(rest.body.next).toBeNull();
    // An id of another type as the cursor: the errands after it.
    const other = made.find((e) => e.type === "b")?.id ?? "";
    const after = await a.call("GET", `/v1/errands?type=a&status=failed&after=${other}`);
    expect(after.body.results.map((e: { id: string }) => e.id)).toEqual(
      failedA.filter((id) => id > other),
    );
  });

  test("a name with a status or type, an unknown status, or an empty type is 400", async () => {
    const a = app();
    await create(a, { name: "n" });
    for (const query of [
      "name=n&status=inactive",
      "name=n&type=work",
      "name=n&status=inactive&type=work",
      "status=nope",
      "status=",
      "status=INACTIVE",
      "type=",
      "type=work&status=nope",
    ]) {
      const answer = await a.call("GET", `/v1/errands?${query}`);
      expect({ query, status: answer.status }).toEqual({ query, status: 400 });
      expect(answer.body.message).toBe("Invalid request");
      expect(answer.body.error).toMatch(/^query\.(name|status|type)/);
    }
    expect(
      (await a.call("GET", "/v1/errands?status=inactive&type=work")).body.results,
    ).toHaveLength(1);
  });
});

describe("newest first", () => {
  /** Every shape of filter GET /v1/errands takes, with the errands of `mixed` it matches. */
  const FILTERS: Array<Record<string, string>> = [
    {},
    { status: "failed" },
    { type: "b" },
    { status: "failed", type: "a" },
    { status: "completed", type: "c" },
    { status: "active", type: "a" },
    { name: "m1" },
    { name: "m" },
    { name: "n" },
  ];
  const matching = (made: Awaited<ReturnType<typeof mixed>>, filter: Record<string, string>) =>
    made.filter(
      (e) =>
        (filter.status === undefined || e.status === filter.status) &&
        (filter.type === undefined || e.type === filter.type) &&
        (filter.name === undefined || e.name.startsWith(filter.name)),
    );

  test("?order=newest pages through every filter to the end, each errand once, newest first, and streams the same", async () => {
    const a = app();
    const made = await mixed(a);
    for (const filter of FILTERS) {
      const expected = matching(made, filter)
        .map((e) => e.id)
        .reverse();
      const query = new URLSearchParams({ ...filter, order: "newest" }).toString();
      const streamed = await a.call("GET", `/v1/errands?${query}`);
      expect(streamed.status).toBe(200);
      expect({ filter, ids: streamed.body.results.map((e: { id: string }) => e.id) }).toEqual({
        filter,
        ids: expected,
      });
      for (const limit of [1, 2, 5]) {
        const pages = await allPages(a, `/v1/errands?${query}`, limit);
        expect({ filter, limit, ids: pages.flat() }).toEqual({ filter, limit, ids: expected });
        // Full pages until the last.
        expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
      }
      // Oldest first is the default, and the same list the other way round.
      const oldest = new URLSearchParams({ ...filter, order: "oldest" }).toString();
      for (const path of [`/v1/errands?${oldest}`, `/v1/errands?${new URLSearchParams(filter)}`]) {
        const answer = await a.call("GET", path);
        expect(answer.body.results.map((e: { id: string }) => e.id)).toEqual(
          [...expected].reverse(),
        );
      }
    }
    // Streamed newest first across more than one of the stream's pages (500 errands each).
    const errands = Array.from({ length: 1200 }, (_, i) => ({ name: `bulk${i}`, type: "bulk" }));
    for (const batch of [errands.slice(0, 600), errands.slice(600)]) {
      expect((await a.call("POST", "/v1/errands/batch", { errands: batch })).status).toBe(200);
    }
    const all = await a.call("GET", "/v1/errands?order=newest&type=bulk");
    const names = all.body.results.map((e: { name: string }) => e.name);
    expect(names).toEqual(errands.map((e) => e.name).reverse());
  });

  test("a newest-first cursor resumes before it, whether or not it matches", async () => {
    const a = app();
    const made = await mixed(a);
    const ids = (answer: { body: { results: Array<{ id: string }> } }) =>
      answer.body.results.map((e) => e.id);
    for (const filter of FILTERS) {
      const newest = matching(made, filter)
        .map((e) => e.id)
        .reverse();
      const query = new URLSearchParams({ ...filter, order: "newest" }).toString();
      // Every errand's id as the cursor, of the filter or not, and an id no errand has: the
      // matching errands created before it, paged and streamed.
      const cursors = [...made.map((e) => e.id), `${made[9]?.id}0`];
      for (const after of cursors) {
        const before = newest.filter((id) => id < after);
        const paged = await a.call("GET", `/v1/errands?${query}&limit=100&after=${after}`);
        expect({ filter, after, ids: ids(paged) }).toEqual({ filter, after, ids: before });
        expect(paged.body.next).toBeNull();
        const streamed = await a.call("GET", `/v1/errands?${query}&after=${after}`);
        expect({ filter, after, ids: ids(streamed) }).toEqual({ filter, after, ids: before });
      }
    }
    // `next` is the last id of the page, as oldest first.
    const first = await a.call("GET", "/v1/errands?order=newest&limit=3");
    expect(first.body.next).toBe(made[15]?.id);
  });

  test("an order other than oldest or newest is 400 naming query.order", async () => {
    const a = app();
    await create(a, { name: "n" });
    for (const query of [
      "order=",
      "order=NEWEST",
      "order=desc",
      "order=latest",
      "order=newest&limit=2&status=nope",
      "order=x&name=n",
    ]) {
      const answer = await a.call("GET", `/v1/errands?${query}`);
      expect({ query, status: answer.status }).toEqual({ query, status: 400 });
      expect(answer.body.message).toBe("Invalid request");
      expect(answer.body.error).toMatch(/^query\.(order|status)/);
    }
    const answer = await a.call("GET", "/v1/errands?order=sideways");
    expect(answer.body.error).toMatch(/^query\.order\b.*oldest or newest/);
  });

  test("the v1 list by status or type takes no order, as before", async () => {
    const a = app();
    const made = await mixed(a);
    const refused = await a.call("GET", "/v1/errands/list/type/a?order=newest");
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/^query\.order/);
    const answer = await a.call("GET", "/v1/errands/list/type/a");
    expect(answer.body.results.map((e: { id: string }) => e.id)).toEqual(
      made.filter((e) => e.type === "a").map((e) => e.id),
    );
  });
});

/** Every shape of a filter: all errands, a status, a type, both. */
const SHAPES: Array<[ErrandFilter, string]> = [
  [{}, "the primary key"],
  [{ status: "failed" }, "errands_status"],
  [{ type: "work" }, "errands_type"],
  [{ status: "failed", type: "work" }, "errands_type_status"],
];

/** 200 errands: type work inactive, and type rest failed, alternately. */
async function workAndRest(a: TestApp): Promise<void> {
  const errands = Array.from({ length: 200 }, (_, i) => ({
    name: `e${i}`,
    type: ["work", "rest"][i % 2],
  }));
  await a.call("POST", "/v1/errands/batch", { errands });
  await a.call("POST", "/v1/errands/update/type/rest", { status: "failed" });
}

describe.skipIf(onPostgres)("cost of the lists", () => {
  test("the scheduled list and the name search read an index, never the whole table", async () => {
    const a = app();
    const now = a.clock.now();
    const errands = Array.from({ length: 200 }, (_, i) => ({
      name: `e${i}`,
      type: "work",
      options: i % 2 ? { runAt: now + i } : {},
    }));
    await a.call("POST", "/v1/errands/batch", { errands });
    // No ANALYZE: a new store has no statistics, and the plans must hold without them.
    const sql = new ReadStatements(a.store.writer).errands;
    sql.pageScheduled.all(now, "x", 100);
    const scheduled = sqlitePlanOf(a, sql.pageScheduled);
    expect(scheduled.some((step) => step.includes("INDEX errands_due"))).toBe(true);
    // Served in index order: nothing to sort.
    expect(scheduled.filter((step) => step.includes("TEMP B-TREE"))).toEqual([]);
    expect(scheduled.filter((step) => /^SCAN errands\b(?! USING)/.test(step))).toEqual([]);
    // Either way, from the start or from a cursor.
    for (const [order, after] of [
      ["oldest", ""],
      ["newest", ""],
      ["newest", "x"],
    ] as const) {
      const byName = sql.pageByName[order].of(after);
      byName.all("e1", "e2", after, 100);
      const plan = sqlitePlanOf(a, byName);
      expect({ order, after, plan }).toEqual({
        order,
        after,
        plan: expect.arrayContaining([expect.stringContaining("COVERING INDEX errands_name")]),
      });
      expect(plan.filter((step) => /^SCAN errands\b(?! USING)/.test(step))).toEqual([]);
    }
  });
});

describe.skipIf(onPostgres)("cost of the filtered lists", () => {
  test("every shape of the status and type filter reads a range of an index in id order", async () => {
    const a = app();
    await workAndRest(a);
    // No ANALYZE: a new store has no statistics, and the plans must hold without them.
    const pages = new ReadStatements(a.store.writer).errands.page.oldest;
    const ids = new ErrandWrites(a.store.writer).ids;
    for (const [filter, index] of SHAPES) {
      const name = index === "the primary key" ? "sqlite_autoindex_errands_1" : index;
      for (const statements of [pages, ids]) {
        const statement = statements.of(filter, "");
        statement.all(filter.type ?? null, filter.status ?? null, "", 100);
        const plan = a.store.writer
          .query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${statement.toString()}`)
          .all()
          .map((row) => row.detail);
        expect({ filter, plan: plan.join("; ") }).toEqual({
          filter,
          plan: expect.stringMatching(
            new RegExp(`^SEARCH errands USING (COVERING )?INDEX ${name} \\(`),
          ),
        });
        // One step, in index order: nothing scanned whole, nothing sorted.
        expect(plan).toHaveLength(1);
      }
    }
  });
});

describe.skipIf(onPostgres)("cost of the lists newest first", () => {
  test("every shape of the status and type filter reads its index backwards, from the start or a cursor", async () => {
    const a = app();
    await workAndRest(a);
    // No ANALYZE, as above.
    const pages = new ReadStatements(a.store.writer).errands.page.newest;
    for (const [filter, index] of SHAPES) {
      const name = index === "the primary key" ? "sqlite_autoindex_errands_1" : index;
      for (const after of ["", "x"]) {
        const statement = pages.of(filter, after);
        statement.all(filter.type ?? null, filter.status ?? null, after, 100);
        const plan = sqlitePlanOf(a, statement);
        // All errands from the start have no range to search: the primary key read from its
        // end, stopped by the LIMIT.
        expect({ filter, after, plan: plan.join("; ") }).toEqual({
          filter,
          after,
          plan: expect.stringMatching(
            new RegExp(`^(SEARCH|SCAN) errands USING (COVERING )?INDEX ${name}\\b`),
          ),
        });
        // One step, nothing sorted: the index gives the order itself, walked backwards.
        expect(plan).toHaveLength(1);
        const opcodes = a.store.writer
          .query<{ opcode: string }, []>(`EXPLAIN ${statement.toString()}`)
          .all()
          .map((row) => row.opcode);
        expect({ filter, after, backwards: opcodes.includes("Prev") }).toEqual({
          filter,
          after,
          backwards: true,
        });
        expect(opcodes).not.toContain("Next");
      }
    }
  });
});

describe.skipIf(!onPostgres)("cost of the lists on PostgreSQL", () => {
  test("the scheduled list and the name search each have an index to read", async () => {
    const a = app();
    const now = a.clock.now();
    const errands = Array.from({ length: 200 }, (_, i) => ({
      name: `e${i}`,
      type: "work",
      options: i % 2 ? { runAt: now + i } : {},
    }));
    await a.call("POST", "/v1/errands/batch", { errands });
    await withExplainedTx(a, async (reads, plansOf) => {
      const cases: Array<[() => Promise<unknown>, string]> = [
        [() => reads.scheduledPage(null, 100), "errands_due"],
        [() => reads.scheduledPage({ runAt: now + 50, id: "x" }, 100), "errands_due"],
        [() => reads.errandPageByName("e1", "", 100, "oldest"), "errands_name"],
        [() => reads.errandPageByName("e1", "", 100, "newest"), "errands_name"],
        [() => reads.errandPageByName("e1", "x", 100, "newest"), "errands_name"],
      ];
      for (const [run, index] of cases) {
        const plan = await plansOf(run);
        expect(plan).toMatch(new RegExp(`(using|on) ${index} `));
        expect(plan).not.toMatch(/Seq Scan on errands\b/);
      }
    });
  });

  test("every shape of the status and type filter reads an index in id order, newest first backwards", async () => {
    const a = app();
    await workAndRest(a);
    const sql = await schemaConnection(a);
    try {
      // Scans and sorts priced out: a plan that still scans the table, or sorts, has no index
      // that serves its statement in id order.
      await sql`SET enable_seqscan = off`;
      await sql`SET enable_sort = off`;
      const { tx, plansOf } = explainingTx(sql);
      for (const [filter, name] of SHAPES) {
        const index = name === "the primary key" ? "errands_pkey" : name;
        // A page of the list, a bulk action's ids, and a page newest first from the start and
        // from a cursor.
        for (const [run, scan] of [
          [() => tx.errandPage(filter, "", 100, "oldest"), "Scan"],
          [() => tx.errandIdsWhere(filter, "x", 100), "Scan"],
          [() => tx.errandPage(filter, "", 100, "newest"), "Scan Backward"],
          [() => tx.errandPage(filter, "x", 100, "newest"), "Scan Backward"],
        ] as const) {
          const plan = await plansOf(run);
          expect({ filter, plan }).toEqual({
            filter,
            plan: expect.stringMatching(
              new RegExp(`Index (Only )?${scan} using ${index} on errands`),
            ),
          });
          expect(plan).not.toMatch(/Seq Scan|Sort/);
        }
      }
    } finally {
      await sql.close();
    }
  });
});
