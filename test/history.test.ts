// GET /v1/types/history: completions, failures and waiting errands per minute, kept by the
// server as it goes, by type and in all, across restarts, instances and the 24 h it keeps.

import type { Statement } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../src/clock.ts";
import { ReadStatements, WriteStatements } from "../src/store/sqlite/access.ts";
import { MAX_PENDING } from "../src/types/history.ts";
import {
  appsPerTest,
  onPostgres,
  storeRows,
  type TestApp,
  tempDir,
  withExplainedTx,
} from "./harness.ts";
import { startServer } from "./server-process.ts";

const app = appsPerTest();
const MINUTE = 60_000;

async function create(a: TestApp, type: string, options: Record<string, unknown> = {}) {
  const answer = await a.call("POST", "/v1/errands", { name: "e", type, options });
  expect(answer.status).toBe(200);
  return answer.body.results.id as string;
}

/** Claims the next errand of `type`; its id. */
async function claim(a: TestApp, type: string): Promise<string> {
  const answer = await a.call("POST", `/v1/errands/process/${type}`);
  expect(answer.status).toBe(200);
  return answer.body.results.id;
}

async function completeOne(a: TestApp, type: string): Promise<void> {
  const id = await claim(a, type);
  expect((await a.call("PUT", `/v1/errand/${id}/completed`, {})).status).toBe(200);
}

async function failOne(a: TestApp, type: string): Promise<void> {
  const id = await claim(a, type);
  expect((await a.call("PUT", `/v1/errand/${id}/failed`, { reason: "boom" })).status).toBe(200);
}

/** The history's entries as [completed, failed, waiting], oldest first. */
async function history(a: TestApp, query = ""): Promise<Array<[number, number, number | null]>> {
  const answer = await a.call("GET", `/v1/types/history${query}`);
  expect(answer.status).toBe(200);
  expect(answer.body.status).toBe("OK");
  return answer.body.results.map(
    (m: { completed: number; failed: number; waiting: number | null }) => [
      m.completed,
      m.failed,
      m.waiting,
    ],
  );
}

const minuteOf = (ms: number) => Math.floor(ms / MINUTE) * MINUTE;

describe("the history per minute", () => {
  test("completions and failures are counted in the minute they happen as the clock moves", async () => {
    const a = app();
    a.clock.advance(10_000);
    for (let i = 0; i < 5; i++) await create(a, "t", { retries: 1 });
    await completeOne(a, "t");
    await completeOne(a, "t");
    a.clock.advance(MINUTE);
    // A failure that re-queues the errand counts, and so does its last.
    await failOne(a, "t");
    await failOne(a, "t");
    await completeOne(a, "t");
    a.clock.advance(MINUTE);
    // Kept in memory until the sweep writes it, whichever minute that is in.
    await a.sweep();
    const answer = await a.call("GET", "/v1/types/history?minutes=4");
    const now = minuteOf(a.clock.now());
    expect(answer.body.results.map((m: { minute: number }) => m.minute)).toEqual([
      now - 3 * MINUTE,
      now - 2 * MINUTE,
      now - MINUTE,
      now,
    ]);
    expect(await history(a, "?minutes=4")).toEqual([
      [0, 0, null],
      [2, 0, null],
      [1, 2, null],
      [0, 0, 1],
    ]);
  });

  test("expiries count as failures; a bulk update to failed and a retry do not", async () => {
    const a = app();
    await create(a, "t", { ttl: 1 });
    await claim(a, "t");
    await create(a, "t", { heartbeat: 5 });
    await claim(a, "t");
    a.clock.advance(MINUTE + 1);
    await a.sweep();
    expect((await history(a, "?minutes=2")).map(([, failed]) => failed)).toEqual([0, 2]);
    const id = await create(a, "u");
    await a.call("POST", "/v1/errands/update/type/u", { status: "failed" });
    await a.call("POST", `/v1/errand/${id}/retry`);
    await a.sweep();
    expect((await history(a, "?minutes=2&type=u")).map(([, failed]) => failed)).toEqual([0, 0]);
  });

  test("with a type, that type's counts; without, every type's summed", async () => {
    const a = app();
    for (const type of ["a", "a", "a", "b", "b"]) await create(a, type);
    await completeOne(a, "a");
    await completeOne(a, "a");
    await failOne(a, "b");
    await a.sweep();
    expect(await history(a, "?minutes=1")).toEqual([[2, 1, 2]]);
    expect(await history(a, "?minutes=1&type=a")).toEqual([[2, 0, 1]]);
    expect(await history(a, "?minutes=1&type=b")).toEqual([[0, 1, 1]]);
    // A type with nothing: zeros, and none waiting in the sampled minute.
    expect(await history(a, "?minutes=1&type=c")).toEqual([[0, 0, 0]]);
  });

  test("every minute asked is answered, the ones with nothing as zeros, 60 by default", async () => {
    const a = app();
    a.clock.advance(42_000);
    const answer = await a.call("GET", "/v1/types/history");
    expect(answer.status).toBe(200);
    const minutes = answer.body.results as Array<{ minute: number }>;
    expect(minutes).toHaveLength(60);
    const now = minuteOf(a.clock.now());
    expect(minutes.map((m) => m.minute)).toEqual(
      Array.from({ length: 60 }, (_, i) => now - (59 - i) * MINUTE),
    );
    expect(minutes.every((m) => JSON.stringify(m).includes('"completed":0,"failed":0'))).toBe(true);
    expect(await history(a, "?minutes=1440")).toHaveLength(1440);
    expect(await history(a, "?minutes=1")).toEqual([[0, 0, null]]);
  });

  test("waiting is sampled once a minute from the kept counts; null for a minute without a sample", async () => {
    const a = app();
    for (let i = 0; i < 3; i++) await create(a, "a");
    await create(a, "b");
    await claim(a, "b");
    await create(a, "b", { delay: 3_600_000 });
    await a.sweep();
    // Inactive errands only: not the active one, nor the scheduled one.
    expect(await history(a, "?minutes=1")).toEqual([[0, 0, 3]]);
    expect(await history(a, "?minutes=1&type=a")).toEqual([[0, 0, 3]]);
    expect(await history(a, "?minutes=1&type=b")).toEqual([[0, 0, 0]]);
    // The minute's sample stands until the next minute.
    await create(a, "a");
    await a.sweep();
    expect(await history(a, "?minutes=1")).toEqual([[0, 0, 3]]);
    // A minute without a sweep (no server running) has none; the next minute's sweep takes one.
    a.clock.advance(2 * MINUTE);
    await a.sweep();
    expect(await history(a, "?minutes=3")).toEqual([
      [0, 0, 3],
      [0, 0, null],
      [0, 0, 4],
    ]);
    expect(await history(a, "?minutes=3&type=a")).toEqual([
      [0, 0, 3],
      [0, 0, null],
      [0, 0, 4],
    ]);
  });

  test("the history survives a restart on the same store", async () => {
    const first = app();
    for (let i = 0; i < 3; i++) await create(first, "t");
    await completeOne(first, "t");
    await first.sweep();
    first.clock.advance(MINUTE);
    await failOne(first, "t");
    await first.sweep();
    const before = await history(first, "?minutes=3&type=t");
    expect(before).toEqual([
      [0, 0, null],
      [1, 0, 2],
      [0, 1, 1],
    ]);
    await first.close();
    const second = app({ dir: first.dir, clock: new ManualClock(first.clock.now()) });
    expect(await history(second, "?minutes=3&type=t")).toEqual(before);
    // Counting goes on from what is stored.
    await completeOne(second, "t");
    await second.sweep();
    expect((await history(second, "?minutes=1&type=t"))[0]?.slice(0, 2)).toEqual([1, 1]);
  });

  test("what was counted since the last sweep is written by flush, as the server does when it stops", async () => {
    const first = app();
    await first.sweep();
    await create(first, "t");
    await completeOne(first, "t");
    await first.history.flush();
    await first.close();
    const second = app({ dir: first.dir, clock: new ManualClock(first.clock.now()) });
    expect(await history(second, "?minutes=1")).toEqual([[1, 0, 0]]);
  });

  test("the counts held for the next write are bounded: past the bound they are dropped, and said so", async () => {
    const a = app();
    // As many types as the bound holds, each with a completion this minute, and one more.
    for (let i = 0; i <= MAX_PENDING; i++) {
      a.history.observe({ event: "completed", errand: { type: `t${i}` } });
    }
    expect(a.history.dropped).toBe(1);
    // A type already held still counts.
    a.history.observe({ event: "failed", errand: { type: "t0" } });
    await a.sweep();
    expect(await history(a, "?minutes=1")).toEqual([[MAX_PENDING, 1, 0]]);
    // Written, they no longer take room.
    a.history.observe({ event: "completed", errand: { type: "new" } });
    expect(a.history.dropped).toBe(1);
  });

  test("minutes older than 24 h are pruned by the sweep", async () => {
    const a = app();
    await create(a, "t");
    await completeOne(a, "t");
    await a.sweep();
    const first = minuteOf(a.clock.now());
    const stored = async () =>
      (
        await storeRows(
          a,
          `SELECT (SELECT count(*) FROM minute_totals WHERE minute = ${first}) AS totals,
                  (SELECT count(*) FROM minute_counts WHERE minute = ${first}) AS types`,
        )
      ).map((row) => [Number(row.totals), Number(row.types)])[0];
    expect(await stored()).toEqual([1, 1]);
    // The oldest minute a full day's answer holds is still there.
    a.clock.advance(1439 * MINUTE);
    await a.sweep();
    expect((await history(a, "?minutes=1440"))[0]).toEqual([1, 0, 0]);
    expect(await stored()).toEqual([1, 1]);
    a.clock.advance(MINUTE);
    await a.sweep();
    expect(await stored()).toEqual([0, 0]);
    expect(await history(a, "?minutes=1440")).not.toContainEqual([1, 0, 0]);
  });

  test("minutes that are not a whole number from 1 to 1440, or an empty type, are 400", async () => {
    const a = app();
    for (const query of ["0", "1441", "-1", "1.5", "abc", "", "1e9"]) {
      const answer = await a.call("GET", `/v1/types/history?minutes=${query}`);
      expect(answer.status).toBe(400);
      expect(answer.body.message).toBe("Invalid request");
      expect(answer.body.error).toContain("minutes");
    }
    const empty = await a.call("GET", "/v1/types/history?type=");
    expect(empty.status).toBe(400);
    expect(empty.body.error).toContain("type");
    expect((await a.call("GET", "/v1/types/history?minutes=1440&type=t")).status).toBe(200);
  });
});

describe.skipIf(onPostgres)("the server process", () => {
  test("a stop by SIGTERM writes what was counted since the last sweep", async () => {
    const dir = tempDir();
    const call = async (base: string, method: string, path: string, body?: unknown) => {
      const init: RequestInit = { method, headers: { "content-type": "application/json" } };
      if (body !== undefined) init.body = JSON.stringify(body);
      const res = await fetch(`${base}${path}`, init);
      expect(res.status).toBe(200);
      return ((await res.json()) as { results: unknown }).results;
    };
    const first = await startServer({ ERRANDS_STORAGE: `${dir}/` });
    try {
      await call(first.base, "POST", "/v1/errands", { name: "e", type: "t" });
      const { id } = (await call(first.base, "POST", "/v1/errands/process/t")) as { id: string };
      // Stopped at once: the sweep, once a second, has most likely not written it.
      await call(first.base, "PUT", `/v1/errand/${id}/completed`, {});
    } finally {
      expect(await first.stop("SIGTERM")).toBe(0);
    }
    const second = await startServer({ ERRANDS_STORAGE: `${dir}/` });
    try {
      const minutes = (await call(second.base, "GET", "/v1/types/history?minutes=5")) as Array<{
        completed: number;
      }>;
      expect(minutes.reduce((sum, m) => sum + m.completed, 0)).toBe(1);
    } finally {
      await second.stop("SIGTERM");
    }
  });
});

describe.skipIf(!onPostgres)("the history with several instances on PostgreSQL", () => {
  test("each instance adds its own counts: the sums are every instance's", async () => {
    const one = app();
    for (let i = 0; i < 6; i++) await create(one, "t");
    // Started once the first has made the schema, as a second server would be.
    const two = app({ dir: one.dir, clock: new ManualClock(one.clock.now()) });
    await completeOne(one, "t");
    await completeOne(two, "t");
    await completeOne(two, "t");
    await failOne(one, "t");
    await failOne(two, "t");
    await Promise.all([one.sweep(), two.sweep()]);
    // Each instance's sample is one taken in the minute: the last one written stands.
    expect(await history(one, "?minutes=1")).toEqual([[3, 2, 1]]);
    expect(await history(two, "?minutes=1&type=t")).toEqual([[3, 2, 1]]);
    await completeOne(one, "t");
    await Promise.all([one.sweep(), two.sweep()]);
    expect(await history(two, "?minutes=1")).toEqual([[4, 2, 1]]);
  });
});

describe.skipIf(onPostgres)("cost of the history", () => {
  test("reads, samples and prunes of the history each read an index range, never a whole table", async () => {
    const a = app();
    await create(a, "t");
    await completeOne(a, "t");
    await a.sweep();
    // No ANALYZE: a new store has no statistics, and the plans must hold without them.
    const reads = new ReadStatements(a.store.writer).history;
    const writes = new WriteStatements(a.store.writer).historyWrites;
    const planOf = (statement: Statement) =>
      a.store.writer
        .query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${statement.toString()}`)
        .all()
        .map((row) => row.detail);
    // minute_totals is `t`, minute_counts `c` in the read of one type.
    const cases: Array<[unknown, string[]]> = [
      [reads.totals, ["SEARCH minute_totals USING INTEGER PRIMARY KEY (rowid>?)"]],
      [
        reads.ofType,
        [
          "SEARCH t USING INTEGER PRIMARY KEY (rowid>?)",
          "SEARCH c USING PRIMARY KEY (type=? AND minute=?)",
        ],
      ],
      [writes.clearWaiting, ["SEARCH minute_counts USING INDEX minute_counts_minute"]],
      [writes.pruneTypes, ["SEARCH minute_counts USING COVERING INDEX minute_counts_minute"]],
      [writes.pruneTotals, ["SEARCH minute_totals USING INTEGER PRIMARY KEY (rowid<?)"]],
    ];
    for (const [statement, uses] of cases) {
      const plan = planOf(statement as Statement);
      for (const use of uses) expect(plan.some((step) => step.includes(use))).toBe(true);
      expect(plan.filter((step) => step.startsWith("SCAN"))).toEqual([]);
      // Served in key order: nothing to sort.
      expect(plan.filter((step) => step.includes("TEMP B-TREE"))).toEqual([]);
    }
  });
});

describe.skipIf(!onPostgres)("cost of the history on PostgreSQL", () => {
  test("reads, samples and prunes of the history each have an index to read", async () => {
    const a = app();
    await create(a, "t");
    await completeOne(a, "t");
    await a.sweep();
    await withExplainedTx(a, async (tx, plansOf) => {
      const from = minuteOf(a.clock.now()) - 59 * MINUTE;
      const cases: Array<[() => Promise<unknown>, string[]]> = [
        [() => tx.minuteCounts(from), ["minute_totals_pkey"]],
        [() => tx.minuteCounts(from, "t"), ["minute_totals_pkey", "minute_counts_pkey"]],
        [() => tx.pruneMinuteCounts(from, 100), ["minute_totals_pkey", "minute_counts_minute"]],
        // A sample replaces the minute's last: the types it had waiting are read on the index.
        [
          () => tx.setWaitingSample(from, [{ type: "t", waiting: 1 }]).then(() => tx.drain()),
          ["minute_counts_minute"],
        ],
      ];
      for (const [run, indexes] of cases) {
        const plan = await plansOf(run);
        for (const index of indexes) expect(plan).toMatch(new RegExp(`(using|on) ${index}\\b`));
        expect(plan).not.toMatch(/Seq Scan on minute_/);
      }
    });
  });
});
