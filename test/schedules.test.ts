// Schedules (README, Schedules) as a client sees them: PUT, GET, DELETE, and the errands their
// ticks create as the sweep runs on a clock the test moves, across daylight saving, a restart,
// downtime and, on PostgreSQL, two instances sweeping one store at once; and the indexes the
// sweep reads.

import { afterAll, describe, expect, test } from "bun:test";
import { ManualClock } from "../src/clock.ts";
import { WriteStatements } from "../src/store/sqlite/access.ts";
import {
  appsPerTest,
  onPostgres,
  removeTempDirs,
  sqlitePlanOf,
  storeRows,
  type TestApp,
  withExplainedTx,
} from "./harness.ts";

afterAll(removeTempDirs);

const app = appsPerTest();

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

interface Errand {
  id: string;
  name: string;
  type: string;
  status: string;
  options: Record<string, unknown>;
  data?: Record<string, unknown>;
  logs?: Array<{ severity: string; message: string }>;
}

async function put(a: TestApp, name: string, body: Record<string, unknown>) {
  const answer = await a.call("PUT", `/v1/schedules/${encodeURIComponent(name)}`, body);
  expect([200, 201]).toContain(answer.status);
  return answer.body.results;
}

async function schedule(a: TestApp, name: string) {
  const answer = await a.call("GET", `/v1/schedules/${encodeURIComponent(name)}`);
  expect(answer.status).toBe(200);
  return answer.body.results;
}

async function errands(a: TestApp): Promise<Errand[]> {
  const answer = await a.call("GET", "/v1/errands");
  expect(answer.status).toBe(200);
  return answer.body.results;
}

/** The tick a schedule's errand was created for, as its first log line names it. */
function tickOf(errand: Errand): string {
  const message = errand.logs?.[0]?.message ?? "";
  return /for tick (\S+)$/.exec(message)?.[1] ?? `(no tick in ${JSON.stringify(message)})`;
}

/** Moves the clock forward to `when` (ms since the epoch). */
function moveTo(a: TestApp, when: number): void {
  expect(when).toBeGreaterThanOrEqual(a.clock.now());
  a.clock.advance(when - a.clock.now());
}

/**
 * Follows a schedule through `n` ticks: a sweep a moment before each creates nothing, a sweep
 * at it creates one errand for it. Answers the ticks, as instants in UTC.
 */
async function follow(a: TestApp, name: string, n: number): Promise<string[]> {
  const ticks: string[] = [];
  for (let i = 0; i < n; i++) {
    const next: number = (await schedule(a, name)).nextRunAt;
    const before = (await errands(a)).length;
    moveTo(a, next - 1);
    await a.sweep();
    expect((await errands(a)).length).toBe(before);
    moveTo(a, next);
    await a.sweep();
    await a.sweep();
    const now = await errands(a);
    expect(now.length).toBe(before + 1);
    const created = now.at(-1) as Errand;
    expect(tickOf(created)).toBe(iso(next));
    ticks.push(iso(next));
  }
  return ticks;
}

const job = { name: "report", type: "report" };

describe("the routes", () => {
  test("PUT creates a schedule (201, created: true); GET answers it with its next and last run", async () => {
    const a = app();
    const now = a.clock.now();
    const answer = await a.call("PUT", "/v1/schedules/nightly", {
      cron: "30 2 * * *",
      timezone: "Europe/London",
      errand: { ...job, options: { retries: 2, ttl: 0 }, data: { depth: 3 } },
      overlap: "skip",
      unknownField: true,
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toEqual({
      status: "OK",
      created: true,
      results: {
        name: "nightly",
        cron: "30 2 * * *",
        timezone: "Europe/London",
        // Options as a create keeps them: zero ones left out.
        errand: { ...job, options: { retries: 2 }, data: { depth: 3 } },
        paused: false,
        overlap: "skip",
        nextRunAt: at("2026-01-01T02:30:00Z"),
        lastRunAt: null,
        lastErrandId: null,
        created: now,
        updated: now,
      },
    });
    expect(await schedule(a, "nightly")).toEqual(answer.body.results);
    // With and without a trailing slash, as every route.
    expect((await a.call("GET", "/v1/schedules/nightly/")).body.results).toEqual(
      answer.body.results,
    );
  });

  test("an interval's first tick is `every` after the PUT; a cron's timezone is UTC when left out", async () => {
    const a = app();
    const now = a.clock.now();
    const every = await put(a, "poll", { every: 90 * SECOND, errand: job });
    expect(every).toMatchObject({ every: 90 * SECOND, nextRunAt: now + 90 * SECOND });
    expect(every.cron).toBeUndefined();
    expect(every.timezone).toBeUndefined();
    const cron = await put(a, "hourly", { cron: "@hourly", errand: job });
    expect(cron).toMatchObject({ cron: "@hourly", timezone: "UTC", nextRunAt: now + HOUR });
    expect(cron.every).toBeUndefined();
  });

  test("PUT again replaces it (200, created: false), keeping its last run and working out its next tick anew", async () => {
    const a = app();
    const first = await put(a, "s", { every: MINUTE, errand: job });
    a.clock.advance(MINUTE);
    await a.sweep();
    const fired = await schedule(a, "s");
    expect(fired.lastRunAt).toBe(first.nextRunAt);
    expect(fired.lastErrandId).toBe((await errands(a))[0]?.id);

    a.clock.advance(10 * SECOND);
    const answer = await a.call("PUT", "/v1/schedules/s", {
      cron: "0 */2 * * *",
      errand: { name: "other", type: "other" },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.created).toBe(false);
    expect(answer.body.results).toMatchObject({
      cron: "0 */2 * * *",
      errand: { name: "other", type: "other" },
      lastRunAt: fired.lastRunAt,
      lastErrandId: fired.lastErrandId,
      nextRunAt: at("2026-01-01T02:00:00Z"),
      created: first.created,
      updated: a.clock.now(),
    });
    expect(answer.body.results.every).toBeUndefined();
    // Its next errand is the new one.
    moveTo(a, at("2026-01-01T02:00:00Z"));
    await a.sweep();
    expect((await errands(a)).map((e) => e.type)).toEqual(["report", "other"]);
  });

  test("a PUT that keeps the timing keeps the next tick, so a redeploy never pushes a tick back", async () => {
    const a = app();
    const first = await put(a, "s", { every: HOUR, errand: job });
    a.clock.advance(59 * MINUTE);
    const again = await put(a, "s", { every: HOUR, errand: { ...job, data: { v: 2 } } });
    expect(again.nextRunAt).toBe(first.nextRunAt);
    a.clock.advance(MINUTE);
    await a.sweep();
    expect((await errands(a)).map((e) => e.data)).toEqual([{ v: 2 }]);
    // Another interval starts again from now.
    const changed = await put(a, "s", { every: 2 * HOUR, errand: job });
    expect(changed.nextRunAt).toBe(a.clock.now() + 2 * HOUR);
  });

  test("GET /v1/schedules lists every schedule in name order, streamed or a page at a time", async () => {
    const a = app();
    for (const name of ["b", "a", "c d", "B"]) await put(a, name, { every: MINUTE, errand: job });
    const all = await a.call("GET", "/v1/schedules");
    expect(all.status).toBe(200);
    expect(all.body.results.map((s: { name: string }) => s.name)).toEqual(["B", "a", "b", "c d"]);
    for (const s of all.body.results) {
      expect(Object.keys(s)).toEqual(expect.arrayContaining(["nextRunAt", "lastRunAt"]));
      expect(s.lastErrandId).toBeNull();
    }
    const first = await a.call("GET", "/v1/schedules/?limit=3");
    expect(first.body.results.map((s: { name: string }) => s.name)).toEqual(["B", "a", "b"]);
    expect(first.body.next).toBe("b");
    const second = await a.call("GET", "/v1/schedules?limit=3&after=b");
    expect(second.body.results.map((s: { name: string }) => s.name)).toEqual(["c d"]);
    expect(second.body.next).toBeNull();
    expect((await a.call("GET", "/v1/schedules?limit=0")).status).toBe(400);
  });

  test("DELETE removes a schedule, not the errands it made; an unknown name is 404 on GET and DELETE", async () => {
    const a = app();
    await put(a, "s", { every: MINUTE, errand: job });
    a.clock.advance(MINUTE);
    await a.sweep();
    const removed = await a.call("DELETE", "/v1/schedules/s/");
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ status: "OK" });
    for (const method of ["GET", "DELETE"]) {
      const answer = await a.call(method, "/v1/schedules/s");
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({
        message: "Schedule not found",
        error: 'no schedule is named "s"',
      });
    }
    a.clock.advance(10 * MINUTE);
    await a.sweep();
    expect(await errands(a)).toHaveLength(1);
    expect((await a.call("GET", "/v1/schedules")).body.results).toEqual([]);
    // The name is free again, with a new first tick.
    expect((await a.call("PUT", "/v1/schedules/s", { every: MINUTE, errand: job })).status).toBe(
      201,
    );
  });
});

describe("bad input is a 400 naming the field", () => {
  test("the timing: both or neither of cron and every, a bad cron, interval or time zone", async () => {
    const a = app();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, "body: "],
      [{ cron: "* * * * *", every: 5000 }, "body: "],
      [{ cron: "* * * *" }, "body.cron: "],
      [{ cron: "61 * * * *" }, "body.cron: "],
      [{ cron: "0 0 * * FUNDAY" }, "body.cron: "],
      [{ cron: "@reboot" }, "body.cron: "],
      [{ cron: "0 0 30 2 *" }, "body.cron: "],
      [{ cron: 5 }, "body.cron: "],
      [{ cron: "* * * * *", timezone: "Mars/Olympus_Mons" }, "body.timezone: "],
      [{ cron: "* * * * *", timezone: "+01:00" }, "body.timezone: "],
      [{ cron: "* * * * *", timezone: "" }, "body.timezone: "],
      [{ cron: "* * * * *", timezone: 1 }, "body.timezone: "],
      [{ every: 5000, timezone: "UTC" }, "body.timezone: "],
      [{ every: 999 }, "body.every: "],
      [{ every: 1500.5 }, "body.every: "],
      [{ every: "60000" }, "body.every: "],
      [{ every: -1 }, "body.every: "],
      [{ every: 60_000, overlap: "never" }, "body.overlap: "],
      [{ every: 60_000, paused: "yes" }, "body.paused: "],
    ];
    for (const [timing, field] of cases) {
      const answer = await a.call("PUT", "/v1/schedules/s", { errand: job, ...timing });
      expect([JSON.stringify(timing), answer.status]).toEqual([JSON.stringify(timing), 400]);
      expect(answer.body.message).toBe("Invalid request");
      expect([JSON.stringify(timing), answer.body.error]).toEqual([
        JSON.stringify(timing),
        expect.stringMatching(new RegExp(`^${field.replace(".", "\\.")}`)),
      ]);
    }
    expect((await a.call("GET", "/v1/schedules")).body.results).toEqual([]);
  });

  test("the errand, checked as a create checks it", async () => {
    const a = app();
    const cases: Array<[unknown, string]> = [
      [undefined, "body.errand"],
      [{ type: "t" }, "body.errand.name"],
      [{ name: "n" }, "body.errand.type"],
      [{ name: "n", type: "a\nb" }, "body.errand.type"],
      [{ name: "n", type: "t", options: { ttl: -1 } }, "body.errand.options.ttl"],
      [{ name: "n", type: "t", options: { retries: "2" } }, "body.errand.options.retries"],
      [{ name: "n", type: "t", data: [1] }, "body.errand.data"],
      [{ name: "n", type: "t", options: { runAt: 1, delay: 1 } }, "body.errand.options"],
    ];
    for (const [errand, field] of cases) {
      const answer = await a.call("PUT", "/v1/schedules/s", { every: MINUTE, errand });
      expect([JSON.stringify(errand), answer.status]).toEqual([JSON.stringify(errand), 400]);
      expect(answer.body.error).toStartWith(`${field}`);
      // The same errand is refused by a create too.
      if (errand !== undefined) {
        expect((await a.call("POST", "/v1/errands", errand)).status).toBe(400);
      }
    }
  });

  test("a name with control characters or longer than 255 characters", async () => {
    const a = app();
    for (const name of ["a%0Ab", "a%00", "x".repeat(256)]) {
      const answer = await a.call("PUT", `/v1/schedules/${name}`, { every: MINUTE, errand: job });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toStartWith("params.name: ");
    }
    expect(
      (await a.call("PUT", `/v1/schedules/${"x".repeat(255)}`, { every: MINUTE, errand: job }))
        .status,
    ).toBe(201);
  });
});

describe("ticks", () => {
  test("each due tick creates exactly one errand, with event `created` and a log line naming the schedule and tick", async () => {
    const a = app();
    const created: Array<{ errand: Errand; log?: { message: string } }> = [];
    a.bus.observe((event) => {
      if (event.event === "created") created.push(event as never);
    });
    await put(a, "digest", {
      every: 5 * MINUTE,
      errand: {
        name: "Digest",
        type: "mail",
        options: { priority: 7, retries: 1 },
        data: { to: "all" },
      },
    });
    const tick = a.clock.now() + 5 * MINUTE;
    moveTo(a, tick);
    await Promise.all([a.sweep(), a.sweep(), a.sweep()]);
    await a.sweep();
    const [errand, ...others] = await errands(a);
    expect(others).toEqual([]);
    expect(errand).toMatchObject({
      name: "Digest",
      type: "mail",
      status: "inactive",
      options: { priority: 7, retries: 1 },
      data: { to: "all" },
      logs: [{ severity: "INFO", message: `Created by schedule "digest" for tick ${iso(tick)}` }],
    });
    expect(created.map((e) => [e.errand.id, e.log?.message])).toEqual([
      [errand?.id, `Created by schedule "digest" for tick ${iso(tick)}`],
    ]);
    // A worker can claim it as any errand.
    expect((await a.call("POST", "/v1/errands/process/mail")).body.results.id).toBe(errand?.id);
    expect(await schedule(a, "digest")).toMatchObject({
      lastRunAt: tick,
      lastErrandId: errand?.id,
      nextRunAt: tick + 5 * MINUTE,
    });
  });

  test("ticks fire at the right instants in UTC: seconds, names, nicknames", async () => {
    const a = app({ clock: new ManualClock(at("2026-01-01T00:00:00Z")) });
    // 2026-01-01 is a Thursday.
    await put(a, "weekdays", { cron: "0 9 * JAN MON-FRI", errand: job });
    expect(await follow(a, "weekdays", 3)).toEqual([
      "2026-01-01T09:00:00.000Z",
      "2026-01-02T09:00:00.000Z",
      "2026-01-05T09:00:00.000Z",
    ]);
    await put(a, "seconds", { cron: "*/20 * * * * *", errand: job });
    expect(await follow(a, "seconds", 3)).toEqual([
      "2026-01-05T09:00:20.000Z",
      "2026-01-05T09:00:40.000Z",
      "2026-01-05T09:01:00.000Z",
    ]);
    await a.call("DELETE", "/v1/schedules/seconds");
    await put(a, "hourly", { cron: "@hourly", errand: job });
    expect(await follow(a, "hourly", 2)).toEqual([
      "2026-01-05T10:00:00.000Z",
      "2026-01-05T11:00:00.000Z",
    ]);
  });

  test("ticks fire at the right instants in Europe/London across the spring-forward gap", async () => {
    const a = app({ clock: new ManualClock(at("2026-03-27T12:00:00Z")) });
    // 01:30 local: GMT, then at 02:00 BST when 01:00–02:00 is skipped, then BST.
    await put(a, "daily", { cron: "30 1 * * *", timezone: "Europe/London", errand: job });
    expect(await follow(a, "daily", 3)).toEqual([
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-30T00:30:00.000Z",
    ]);
  });

  test("ticks fire at the right instants in Europe/London when the clocks go back: a repeated time once, an interval in both passes", async () => {
    const a = app({ clock: new ManualClock(at("2026-10-24T12:00:00Z")) });
    await put(a, "daily", { cron: "30 1 * * *", timezone: "Europe/London", errand: job });
    // 01:30 BST (00:30 UTC), not again at 01:30 GMT (01:30 UTC).
    expect(await follow(a, "daily", 2)).toEqual([
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
    ]);
    const b = app({ clock: new ManualClock(at("2026-10-24T23:40:00Z")) });
    await put(b, "half-hourly", { cron: "*/30 * * * *", timezone: "Europe/London", errand: job });
    expect(await follow(b, "half-hourly", 5)).toEqual([
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-25T01:00:00.000Z",
      "2026-10-25T01:30:00.000Z",
      "2026-10-25T02:00:00.000Z",
    ]);
  });

  test("ticks missed while the server was down make one catch-up errand, for the latest of them", async () => {
    const a = app();
    const start = a.clock.now();
    await put(a, "s", { every: 10 * MINUTE, errand: job });
    // Down for an hour and a quarter: seven ticks missed.
    a.clock.advance(75 * MINUTE);
    await a.sweep();
    await a.sweep();
    const all = await errands(a);
    expect(all).toHaveLength(1);
    expect(tickOf(all[0] as Errand)).toBe(iso(start + 70 * MINUTE));
    expect(await schedule(a, "s")).toMatchObject({
      lastRunAt: start + 70 * MINUTE,
      nextRunAt: start + 80 * MINUTE,
    });
  });

  test("a restart between ticks: the schedule and its last run survive, and each tick fires once", async () => {
    const first = app();
    const start = first.clock.now();
    await put(first, "s", { cron: "*/10 * * * *", errand: job });
    first.clock.advance(10 * MINUTE);
    await first.sweep();
    const before = await schedule(first, "s");
    first.release();
    await first.close();

    const second = app({ dir: first.dir, clock: new ManualClock(start + 15 * MINUTE) });
    expect(await schedule(second, "s")).toEqual(before);
    await second.sweep();
    expect(await errands(second)).toHaveLength(1);
    expect(await follow(second, "s", 1)).toEqual([iso(start + 20 * MINUTE)]);
    expect((await errands(second)).map(tickOf)).toEqual([
      iso(start + 10 * MINUTE),
      iso(start + 20 * MINUTE),
    ]);
  });

  test("a restart after a long stop makes one catch-up errand", async () => {
    const first = app();
    const start = first.clock.now();
    await put(first, "s", { cron: "0 * * * *", errand: job });
    first.release();
    await first.close();
    const second = app({ dir: first.dir, clock: new ManualClock(start + 3 * DAY + 30 * MINUTE) });
    await second.sweep();
    const all = await errands(second);
    expect(all.map(tickOf)).toEqual([iso(start + 3 * DAY)]);
    expect((await schedule(second, "s")).nextRunAt).toBe(start + 3 * DAY + HOUR);
  });

  test("overlap skip: no errand while the previous one is unfinished; one again once it completed, failed or was deleted", async () => {
    const a = app();
    await put(a, "s", { every: MINUTE, errand: job, overlap: "skip" });
    const tick = async () => {
      a.clock.advance(MINUTE);
      await a.sweep();
      return (await errands(a)).length;
    };
    expect(await tick()).toBe(1);
    const firstId = (await schedule(a, "s")).lastErrandId;
    // Waiting (inactive), then running (active): no new errand, and the last run stays.
    expect(await tick()).toBe(1);
    const claimed = await a.call("POST", "/v1/errands/process/report");
    expect(claimed.body.results.id).toBe(firstId);
    expect(await tick()).toBe(1);
    expect((await schedule(a, "s")).lastErrandId).toBe(firstId);
    await a.call("PUT", `/v1/errand/${firstId}/completed`, {});
    expect(await tick()).toBe(2);
    const secondId = (await schedule(a, "s")).lastErrandId;
    expect(secondId).not.toBe(firstId);
    await a.call("POST", "/v1/errands/process/report");
    await a.call("PUT", `/v1/errand/${secondId}/failed`, { reason: "boom" });
    expect(await tick()).toBe(3);
    // Deleted counts as finished.
    await a.call("DELETE", `/v1/errand/${(await schedule(a, "s")).lastErrandId}`);
    expect((await errands(a)).length).toBe(2);
    expect(await tick()).toBe(3);
    expect(await tick()).toBe(3);

    // allow (the default): one errand a tick whatever the last one is doing.
    const b = app();
    await put(b, "s", { every: MINUTE, errand: job });
    for (let i = 0; i < 3; i++) {
      b.clock.advance(MINUTE);
      await b.sweep();
    }
    expect((await errands(b)).map((e) => e.status)).toEqual(["inactive", "inactive", "inactive"]);
  });

  test("a paused schedule does not tick; resumed, its next tick counts from now, with no catch-up", async () => {
    const a = app();
    await put(a, "s", { every: 10 * MINUTE, errand: job });
    const paused = await put(a, "s", { every: 10 * MINUTE, errand: job, paused: true });
    expect(paused).toMatchObject({ paused: true, nextRunAt: null });
    a.clock.advance(DAY);
    await a.sweep();
    expect(await errands(a)).toEqual([]);
    const resumed = await put(a, "s", { every: 10 * MINUTE, errand: job });
    expect(resumed).toMatchObject({ paused: false, nextRunAt: a.clock.now() + 10 * MINUTE });
    await a.sweep();
    expect(await errands(a)).toEqual([]);
    expect(await follow(a, "s", 1)).toEqual([iso(resumed.nextRunAt)]);
  });

  test("the rows of fired ticks are pruned after a day", async () => {
    const a = app();
    await put(a, "s", { every: HOUR, errand: job });
    const ticks = async () =>
      Number((await storeRows(a, "SELECT count(*) AS n FROM schedule_ticks"))[0]?.n);
    for (let i = 0; i < 30; i++) {
      a.clock.advance(HOUR);
      await a.sweep();
    }
    // The sweep keeps the last day's: those fired more than 24 h ago are gone.
    expect(await ticks()).toBe(25);
    expect(await errands(a)).toHaveLength(30);
  });
});

describe.skipIf(!onPostgres)("two instances on one PostgreSQL", () => {
  test("sweeping at once, again and again, they create exactly one errand per tick", async () => {
    const clock = new ManualClock();
    const a = app({ clock });
    // The first has made the schema before the second opens it.
    expect((await a.call("GET", "/v1/schedules")).status).toBe(200);
    const b = app({ dir: a.dir, clock });
    const start = clock.now();
    for (let i = 0; i < 5; i++) await put(i % 2 ? a : b, `s${i}`, { every: MINUTE, errand: job });
    await put(a, "cron", { cron: "*/2 * * * *", errand: job });
    const rounds = 20;
    for (let round = 0; round < rounds; round++) {
      clock.advance(MINUTE);
      await Promise.all([a.sweep(), b.sweep(), a.sweep(), b.sweep()]);
    }
    const all = await errands(a);
    // Five schedules a minute, one every other minute.
    expect(all).toHaveLength(5 * rounds + rounds / 2);
    const keys = all.map((e) => e.logs?.[0]?.message);
    expect(new Set(keys).size).toBe(keys.length);
    for (let i = 0; i < 5; i++) {
      const ticks = all.filter((e) => e.logs?.[0]?.message.includes(`"s${i}"`)).map(tickOf);
      expect(ticks).toEqual(
        Array.from({ length: rounds }, (_, k) => iso(start + (k + 1) * MINUTE)),
      );
    }
  });
});

describe.skipIf(onPostgres)("cost", () => {
  test("the due schedules, the list and tick pruning read an index, never a whole table", async () => {
    const a = app();
    for (let i = 0; i < 50; i++) await put(a, `s${i}`, { every: (i + 1) * MINUTE, errand: job });
    a.clock.advance(HOUR);
    await a.sweep();
    // No ANALYZE: a new store has no statistics, and the plans must hold without them.
    const statements = new WriteStatements(a.store.writer);
    const now = a.clock.now();
    statements.scheduleWrites.due.all(now, 100);
    statements.scheduleWrites.pruneTicks.run(now, 100);
    statements.schedules.page.all("s1", 100);
    const plans: Array<[unknown, string]> = [
      [statements.scheduleWrites.due, "INDEX schedules_due"],
      [statements.scheduleWrites.pruneTicks, "INDEX schedule_ticks_created"],
      [statements.schedules.page, "PRIMARY KEY"],
    ];
    for (const [statement, index] of plans) {
      const plan = sqlitePlanOf(a, statement);
      expect(plan.some((step) => step.includes(index))).toBe(true);
      expect(plan.filter((step) => /^SCAN schedule/.test(step))).toEqual([]);
      expect(plan.filter((step) => step.includes("TEMP B-TREE"))).toEqual([]);
    }
  });
});

describe.skipIf(!onPostgres)("cost on PostgreSQL", () => {
  test("the due schedules, the list and tick pruning each have an index to read", async () => {
    const a = app();
    for (let i = 0; i < 50; i++) await put(a, `s${i}`, { every: (i + 1) * MINUTE, errand: job });
    a.clock.advance(HOUR);
    await a.sweep();
    await withExplainedTx(a, async (tx, plansOf) => {
      const now = a.clock.now();
      const cases: Array<[() => Promise<unknown>, string]> = [
        [() => tx.dueSchedules(now, 100), "schedules_due"],
        [() => tx.pruneTicks(now, 100), "schedule_ticks_created"],
        [() => tx.schedulePage("s1", 100), "schedules_pkey"],
      ];
      for (const [run, index] of cases) {
        const plan = await plansOf(run);
        expect(plan).toMatch(new RegExp(`(using|on) ${index}\\b`));
        expect(plan).not.toMatch(/Seq Scan on schedule/);
      }
    });
  });
});
