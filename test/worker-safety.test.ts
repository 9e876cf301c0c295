// Worker safety and scheduling (SPEC §7): attempt checks, heartbeats, scheduled errands,
// backoff, idempotent creates, and per-type controls.

import { describe, expect, test } from "bun:test";
import {
  appsPerTest,
  onPostgres,
  onSchema,
  storedErrands,
  storeRows,
  type TestApp,
} from "./harness.ts";
import { eventually } from "./sse.ts";

const app = appsPerTest();

async function create(a: TestApp, options: Record<string, unknown> = {}, type = "work") {
  const answer = await a.call("POST", "/v1/errands/", { name: "job", type, options });
  expect(answer.status).toBe(200);
  return answer.body.results;
}

async function claim(a: TestApp, type = "work") {
  return a.call("POST", `/v1/errands/process/${type}`);
}

const get = async (a: TestApp, id: string) =>
  (await a.call("GET", `/v1/errand/${id}`)).body.results;

/** Idempotency keys the store holds (no read of the driver lists them). */
const keysKept = async (a: TestApp) =>
  Number((await storeRows(a, "SELECT count(*) AS n FROM idempotency_keys"))[0]?.n);

describe("attempt check", () => {
  test("a call for the current attempt goes through", async () => {
    const a = app();
    const e = await create(a);
    const claimed = (await claim(a)).body.results;
    expect(claimed.attempts).toBe(1);
    const path = `/v1/errand/${e.id}`;
    expect((await a.call("PUT", path, { progress: 10, attempt: 1 })).status).toBe(200);
    const log = { severity: "INFO", message: "m", attempt: 1 };
    expect((await a.call("POST", `${path}/log`, log)).status).toBe(200);
    expect((await a.call("PUT", `${path}/completed`, { attempt: 1 })).status).toBe(200);
  });

  test("a late worker's calls for an attempt that expired and was claimed again are refused and change nothing", async () => {
    const a = app();
    const e = await create(a, { ttl: 1, retries: 1 });
    await claim(a);
    a.clock.advance(61_000);
    await a.sweep(); // TTL: re-queued
    const second = (await claim(a)).body.results;
    expect(second.attempts).toBe(2);
    const before = await get(a, e.id);
    const path = `/v1/errand/${e.id}`;
    const calls = [
      await a.call("PUT", path, { progress: 50, attempt: 1 }),
      await a.call("POST", `${path}/log`, { severity: "INFO", message: "late", attempt: 1 }),
      await a.call("PUT", `${path}/failed`, { reason: "late", attempt: 1 }),
      await a.call("PUT", `${path}/completed`, { results: { late: true }, attempt: 1 }),
      await a.call("POST", `${path}/heartbeat`, { attempt: 1 }),
    ];
    expect(calls.map((c) => c.status)).toEqual([409, 409, 409, 409, 409]);
    expect(calls[0]?.body.message).toBe("Attempt superseded");
    expect(await get(a, e.id)).toEqual(before);
    // The worker that holds attempt 2 finishes it.
    const done = await a.call("PUT", `${path}/completed`, { attempt: 2 });
    expect(done.body.results.status).toBe("completed");
  });

  test("an attempt on an errand that was retried, or is no longer active, is refused", async () => {
    const a = app();
    const e = await create(a);
    await claim(a);
    await a.call("PUT", `/v1/errand/${e.id}/completed`);
    await a.call("POST", `/v1/errand/${e.id}/retry`);
    const late = await a.call("PUT", `/v1/errand/${e.id}/completed`, { attempt: 1 });
    expect(late.status).toBe(409);
    expect((await get(a, e.id)).status).toBe("inactive");
  });

  test("without attempt, v1 behaviour: an operator may complete a failed errand", async () => {
    const a = app();
    const e = await create(a);
    await claim(a);
    await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "x" });
    const done = await a.call("PUT", `/v1/errand/${e.id}/completed`);
    expect(done.body.results.status).toBe("completed");
  });
});

describe("heartbeat", () => {
  test("an errand not heard from for its heartbeat is failed with Heartbeat timeout", async () => {
    const a = app();
    const e = await create(a, { heartbeat: 10 });
    await claim(a);
    a.clock.advance(9_000);
    await a.sweep();
    expect((await get(a, e.id)).status).toBe("active");
    a.clock.advance(2_000);
    await a.sweep();
    const failed = await get(a, e.id);
    expect(failed.status).toBe("failed");
    expect(failed.logs.at(-1)).toMatchObject({ severity: "ERROR", message: "Heartbeat timeout" });
  });

  test("heartbeats, progress and logs each keep the errand alive", async () => {
    const a = app();
    const e = await create(a, { heartbeat: 10 });
    await claim(a);
    const path = `/v1/errand/${e.id}`;
    const signs = [
      () => a.call("POST", `${path}/heartbeat`),
      () => a.call("PUT", path, { progress: 20 }),
      () => a.call("POST", `${path}/log`, { severity: "INFO", message: "alive" }),
    ];
    for (const sign of signs) {
      a.clock.advance(8_000);
      expect((await sign()).status).toBe(200);
      await a.sweep();
    }
    expect((await get(a, e.id)).status).toBe("active");
    a.clock.advance(10_001);
    await a.sweep();
    expect((await get(a, e.id)).status).toBe("failed");
  });

  test("an errand set active by a bulk update is held to its heartbeat too", async () => {
    const a = app();
    const e = await create(a, { heartbeat: 10 });
    const bulk = await a.call("POST", "/v1/errands/update/type/work", { status: "active" });
    expect(bulk.body.count).toBe(1);
    a.clock.advance(9_000);
    await a.sweep();
    expect((await get(a, e.id)).status).toBe("active");
    a.clock.advance(2_000);
    await a.sweep();
    const failed = await get(a, e.id);
    expect(failed.status).toBe("failed");
    expect(failed.logs.at(-1)).toMatchObject({ severity: "ERROR", message: "Heartbeat timeout" });
  });

  test("a heartbeat timeout re-queues under the retry rule and emits failed", async () => {
    const a = app();
    const seen: string[] = [];
    a.bus.subscribe((event) => seen.push(event.event));
    const e = await create(a, { heartbeat: 5, retries: 1 });
    await claim(a);
    a.clock.advance(6_000);
    await a.sweep();
    expect((await get(a, e.id)).status).toBe("inactive");
    await a.eventsHeard();
    expect(seen).toContain("failed");
  });

  test("a heartbeat below 5 seconds is a 400; a heartbeat to an inactive errand is a 409", async () => {
    const a = app();
    const refused = await a.call("POST", "/v1/errands", {
      name: "n",
      type: "t",
      options: { heartbeat: 4 },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain("heartbeat");
    const e = await create(a, { heartbeat: 5 });
    expect((await a.call("POST", `/v1/errand/${e.id}/heartbeat`)).status).toBe(409);
    expect((await a.call("POST", "/v1/errand/nope/heartbeat")).status).toBe(404);
  });

  // SQLite temp triggers; the PostgreSQL counterpart follows.
  test.skipIf(onPostgres)(
    "a log append does not rewrite the errand; with a heartbeat it writes only the deadline",
    async () => {
      const a = app();
      const updates: string[] = [];
      a.store.writer.run("CREATE TEMP TABLE touched (id TEXT, status_changed INTEGER)");
      a.store.writer.run(
        "CREATE TEMP TRIGGER probe AFTER UPDATE ON errands BEGIN INSERT INTO touched VALUES (new.id, old.status IS NOT new.status); END",
      );
      const plain = await create(a);
      await claim(a);
      const beat = await create(a, { heartbeat: 30 });
      await claim(a);
      a.store.writer.run("DELETE FROM touched");
      const log = { severity: "INFO", message: "working" };
      await a.call("POST", `/v1/errand/${plain.id}/log`, log);
      expect(a.store.writer.query("SELECT * FROM touched").all()).toEqual([]);
      await a.call("POST", `/v1/errand/${beat.id}/log`, log);
      const rows = a.store.writer.query("SELECT * FROM touched").all() as Array<{ id: string }>;
      for (const row of rows) updates.push(row.id);
      expect(updates).toEqual([beat.id]);
    },
  );

  test.skipIf(!onPostgres)(
    "on PostgreSQL too, a log append updates no errand row; with a heartbeat only the deadline's",
    async () => {
      const a = app();
      await onSchema(a, "CREATE TABLE touched (id text, columns text[])");
      // Each update of an errand row, with the columns it changed.
      await onSchema(
        a,
        `CREATE FUNCTION probe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         INSERT INTO touched SELECT new.id, array_agg(n.key ORDER BY n.key)
           FROM jsonb_each(to_jsonb(new)) n JOIN jsonb_each(to_jsonb(old)) o USING (key)
          WHERE n.value IS DISTINCT FROM o.value;
         RETURN NULL;
       END $$`,
      );
      await onSchema(
        a,
        "CREATE TRIGGER probe AFTER UPDATE ON errands FOR EACH ROW EXECUTE FUNCTION probe()",
      );
      const plain = await create(a);
      await claim(a);
      const beat = await create(a, { heartbeat: 30 });
      await claim(a);
      await onSchema(a, "DELETE FROM touched");
      a.clock.advance(1000); // so the heartbeat's deadline moves
      const log = { severity: "INFO", message: "working" };
      await a.call("POST", `/v1/errand/${plain.id}/log`, log);
      expect(await onSchema(a, "SELECT * FROM touched")).toEqual([]);
      await a.call("POST", `/v1/errand/${beat.id}/log`, log);
      expect(await onSchema(a, "SELECT * FROM touched")).toEqual([
        { id: beat.id, columns: ["heartbeat_deadline"] },
      ]);
    },
  );

  test("an errand without options.heartbeat never times out for silence", async () => {
    const a = app();
    const e = await create(a);
    await claim(a);
    a.clock.advance(86_400_000);
    await a.sweep();
    expect((await get(a, e.id)).status).toBe("active");
  });
});

describe("scheduled errands", () => {
  test("options.delay makes the errand scheduled; claims never see it before it is due", async () => {
    const a = app();
    const e = await create(a, { delay: 60_000 });
    expect(e.status).toBe("scheduled");
    expect((await claim(a)).status).toBe(404);
    a.clock.advance(59_000);
    await a.sweep();
    expect((await claim(a)).status).toBe(404);
    a.clock.advance(1_000);
    await a.sweep();
    expect((await get(a, e.id)).status).toBe("inactive");
    expect((await claim(a)).body.results.id).toBe(e.id);
  });

  test("options.runAt schedules at that time and emits updated when it comes due", async () => {
    const a = app();
    const events: Array<{ event: string; status: string }> = [];
    a.bus.subscribe((x) =>
      events.push({ event: x.event, status: (x.errand as { status: string }).status }),
    );
    await create(a, { runAt: a.clock.now() + 5_000 });
    a.clock.advance(5_000);
    await a.sweep();
    await a.eventsHeard();
    expect(events).toEqual([
      { event: "created", status: "scheduled" },
      { event: "updated", status: "inactive" },
    ]);
  });

  test("a runAt in the past queues the errand at once", async () => {
    const a = app();
    const e = await create(a, { runAt: a.clock.now() - 1 });
    expect(e.status).toBe("inactive");
  });

  test("runAt and delay together are a 400", async () => {
    const a = app();
    const answer = await a.call("POST", "/v1/errands", {
      name: "n",
      type: "t",
      options: { runAt: 1, delay: 1 },
    });
    expect(answer.status).toBe(400);
  });

  test("a schedule coming due wakes a long-poll waiter", async () => {
    const a = app();
    const e = await create(a, { delay: 1_000 }, "later");
    const waiting = a.app
      .handle(new Request("http://localhost/v1/errands/process/later?wait=30", { method: "POST" }))
      .then(async (r) => (await r.json()) as { results: { id: string } });
    await eventually(() => a.waiters.count === 1);
    a.clock.advance(1_000);
    await a.sweep();
    expect((await waiting).results.id).toBe(e.id);
  });

  test("scheduled survives a restart and is still promoted", async () => {
    const a = app();
    const e = await create(a, { delay: 1_000 });
    a.close();
    const b = app({ dir: a.dir, clock: a.clock });
    a.clock.advance(1_000);
    await b.sweep();
    expect((await get(b, e.id)).status).toBe("inactive");
  });
});

describe("the deadlines an errand answers", () => {
  test("runAt while scheduled, ttlDeadline and heartbeatDeadline while active, none once finished", async () => {
    const a = app();
    const start = a.clock.now();
    const e = await create(a, { delay: 60_000, ttl: 5, heartbeat: 30 });
    expect(e.runAt).toBe(start + 60_000);
    expect(e.ttlDeadline).toBeUndefined();
    expect((await get(a, e.id)).runAt).toBe(start + 60_000);
    a.clock.advance(60_000);
    await a.sweep();
    const queued = await get(a, e.id);
    expect(queued.status).toBe("inactive");
    expect(queued.runAt).toBeUndefined();
    a.clock.advance(1_000);
    const claimed = (await claim(a)).body.results;
    expect(claimed.ttlDeadline).toBe(start + 61_000 + 5 * 60_000);
    expect(claimed.heartbeatDeadline).toBe(start + 61_000 + 30_000);
    a.clock.advance(10_000);
    await a.call("POST", `/v1/errand/${e.id}/heartbeat`, {});
    expect((await get(a, e.id)).heartbeatDeadline).toBe(start + 71_000 + 30_000);
    const done = (await a.call("PUT", `/v1/errand/${e.id}/completed`, {})).body.results;
    expect(done.status).toBe("completed");
    for (const field of ["runAt", "ttlDeadline", "heartbeatDeadline"]) {
      expect(done[field]).toBeUndefined();
    }
  });

  test("an errand without those options answers none of them (v1's shape)", async () => {
    const a = app();
    const e = await create(a);
    const claimed = (await claim(a)).body.results;
    expect(Object.keys(claimed).filter((k) => k.endsWith("Deadline") || k === "runAt")).toEqual([]);
    expect((await get(a, e.id)).runAt).toBeUndefined();
  });
});

describe("backoff", () => {
  test("fixed: a failure that re-queues waits delay as a scheduled errand", async () => {
    const a = app();
    const e = await create(a, { retries: 3, backoff: { type: "fixed", delay: 5_000 } });
    await claim(a);
    const failed = (await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "x" })).body.results;
    expect(failed.status).toBe("scheduled");
    a.clock.advance(4_999);
    await a.sweep();
    expect((await claim(a)).status).toBe(404);
    a.clock.advance(1);
    await a.sweep();
    expect((await claim(a)).body.results.attempts).toBe(2);
  });

  test("exponential: delay·2^(attempts-1), capped at one hour", async () => {
    const a = app();
    const e = await create(a, { retries: 20, backoff: { type: "exponential", delay: 1_000_000 } });
    const waits: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      await claim(a);
      await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "x" });
      const runAt = (await a.store.reads.errand(e.id))?.runAt ?? Number.NaN;
      waits.push(runAt - a.clock.now());
      a.clock.advance(runAt - a.clock.now());
      await a.sweep();
    }
    expect(waits).toEqual([1_000_000, 2_000_000, 3_600_000]);
  });

  test("a fixed delay may exceed the hour; an exponential one longer than it is capped", async () => {
    const a = app();
    const waits: number[] = [];
    for (const type of ["fixed", "exponential"]) {
      const e = await create(a, { retries: 1, backoff: { type, delay: 7_200_000 } });
      await claim(a);
      await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "x" });
      const runAt = (await a.store.reads.errand(e.id))?.runAt ?? Number.NaN;
      waits.push(runAt - a.clock.now());
    }
    expect(waits).toEqual([7_200_000, 3_600_000]);
  });

  test("without backoff a re-queued errand is inactive at once (v1)", async () => {
    const a = app();
    const e = await create(a, { retries: 1 });
    await claim(a);
    const failed = (await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "x" })).body.results;
    expect(failed.status).toBe("inactive");
  });

  test("a scheduled errand cannot be retried (it is already queued)", async () => {
    const a = app();
    const e = await create(a, { delay: 10_000 });
    expect((await a.call("POST", `/v1/errand/${e.id}/retry`)).status).toBe(409);
  });
});

describe("idempotent create", () => {
  test("20 retried creates with one key make one errand", async () => {
    const a = app();
    const body = { name: "once", type: "t" };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        a.call("POST", "/v1/errands/", body, { "idempotency-key": "order-42" }),
      ),
    );
    expect(answers.every((x) => x.status === 200)).toBe(true);
    expect(new Set(answers.map((x) => x.body.results.id)).size).toBe(1);
    expect((await a.call("GET", "/v1/errands")).body.results.length).toBe(1);
  });

  test("the same key with another body is a 409 and creates nothing", async () => {
    const a = app();
    const key = { "idempotency-key": "k" };
    await a.call("POST", "/v1/errands/", { name: "a", type: "t" }, key);
    const other = await a.call("POST", "/v1/errands/", { name: "b", type: "t" }, key);
    expect(other.status).toBe(409);
    expect((await a.call("GET", "/v1/errands")).body.results.length).toBe(1);
  });

  test("a key is forgotten after 24 hours", async () => {
    const a = app();
    const key = { "idempotency-key": "daily" };
    const first = await a.call("POST", "/v1/errands/", { name: "a", type: "t" }, key);
    a.clock.advance(24 * 3_600_000 + 1);
    await a.sweep();
    const second = await a.call("POST", "/v1/errands/", { name: "a", type: "t" }, key);
    expect(second.body.results.id).not.toBe(first.body.results.id);
    expect(await keysKept(a)).toBe(1);
  });

  test("a large backlog of old keys is forgotten whole, a batch per write", async () => {
    const a = app();
    // As if 25,000 keys were used a day ago (written directly: as many creates take long).
    if (onPostgres) {
      await onSchema(
        a,
        `INSERT INTO idempotency_keys (key, request, response, created)
         SELECT 'k' || i, 'r', '{}', ${a.clock.now()} FROM generate_series(0, 24999) i`,
      );
    } else {
      const insert = a.store.writer.prepare(
        "INSERT INTO idempotency_keys (key, request, response, created) VALUES (?, 'r', '{}', ?)",
      );
      a.store.writer.transaction(() => {
        for (let i = 0; i < 25_000; i++) insert.run(`k${i}`, a.clock.now());
      })();
    }
    a.clock.advance(24 * 3_600_000 + 1);
    const commits = a.commits();
    expect(await a.keys.prune()).toBe(25_000);
    expect(a.commits() - commits).toBe(3);
    expect(await keysKept(a)).toBe(0);
  });

  test("batch and pipeline creates honour the key too", async () => {
    const a = app();
    const key = { "idempotency-key": "batch-1" };
    const batch = {
      errands: [
        { name: "a", type: "t" },
        { name: "b", type: "t" },
      ],
    };
    const one = await a.call("POST", "/v1/errands/batch", batch, key);
    const two = await a.call("POST", "/v1/errands/batch", batch, key);
    expect(two.body.results).toEqual(one.body.results);
    const pipeline = { name: "p", errands: [{ name: "x", type: "u" }] };
    const pkey = { "idempotency-key": "pipe-1" };
    const p1 = await a.call("POST", "/v1/pipeline/", pipeline, pkey);
    const p2 = await a.call("POST", "/v1/pipeline/", pipeline, pkey);
    expect(p2.body.results.id).toBe(p1.body.results.id);
    expect((await a.call("GET", "/v1/errands")).body.results.length).toBe(3);
  });
});

describe("per-type controls", () => {
  test("GET /v1/types counts by status, the oldest wait, and the controls", async () => {
    const a = app();
    await create(a, {}, "x");
    a.clock.advance(3_000);
    await create(a, {}, "x");
    await claim(a, "x");
    await a.call("PUT", "/v1/types/y", { paused: true, concurrency: 2 });
    const types = (await a.call("GET", "/v1/types")).body.results;
    expect(types).toEqual([
      {
        type: "x",
        counts: { active: 1, inactive: 1 },
        oldestWaitingMs: 0,
        paused: false,
        concurrency: null,
        rateLimit: null,
        claimsInWindow: null,
      },
      {
        type: "y",
        counts: {},
        oldestWaitingMs: null,
        paused: true,
        concurrency: 2,
        rateLimit: null,
        claimsInWindow: null,
      },
    ]);
  });

  test("the oldest wait counts errands of every priority", async () => {
    const a = app();
    await create(a, { priority: 1 }, "x");
    a.clock.advance(1_000);
    await create(a, { priority: 9 }, "x");
    await create(a, { priority: -3 }, "x");
    a.clock.advance(1_000);
    await create(a, { priority: 9 }, "x");
    // The oldest waits at priority 1, behind errands that would be claimed first.
    const oldest = async () => (await a.call("GET", "/v1/types")).body.results[0].oldestWaitingMs;
    expect(await oldest()).toBe(2_000);
    await claim(a, "x");
    await claim(a, "x");
    await claim(a, "x");
    expect(await oldest()).toBe(1_000);
  });

  test("a paused type answers claims with No jobs until it is resumed", async () => {
    const a = app();
    await create(a);
    await a.call("PUT", "/v1/types/work", { paused: true });
    const refused = await claim(a);
    expect(refused.status).toBe(404);
    expect(refused.body.message).toBe("No jobs");
    await a.call("PUT", "/v1/types/work", { paused: false });
    expect((await claim(a)).status).toBe(200);
  });

  test("a long-poll on a paused type keeps waiting and is served when resumed", async () => {
    const a = app();
    const e = await create(a);
    await a.call("PUT", "/v1/types/work", { paused: true });
    const waiting = a.app
      .handle(new Request("http://localhost/v1/errands/process/work?wait=30", { method: "POST" }))
      .then(async (r) => (await r.json()) as { results: { id: string } });
    await eventually(() => a.waiters.count === 1);
    await a.call("PUT", "/v1/types/work", { paused: false });
    expect((await waiting).results.id).toBe(e.id);
  });

  test("50 concurrent claims with concurrency 3 never see more than 3 active", async () => {
    const a = app();
    const errands = Array.from({ length: 50 }, (_, i) => ({ name: `e${i}`, type: "work" }));
    await a.call("POST", "/v1/errands/batch", { errands });
    await a.call("PUT", "/v1/types/work", { concurrency: 3 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => claim(a)));
    expect(answers.filter((x) => x.status === 200).length).toBe(3);
    const active = await a.store.reads.errandPage({ status: "active" }, "", 100, "oldest");
    expect(active).toHaveLength(3);
    // A finished errand frees a slot.
    const first = answers.find((x) => x.status === 200)?.body.results.id;
    await a.call("PUT", `/v1/errand/${first}/completed`);
    expect((await claim(a)).status).toBe(200);
    expect((await claim(a)).status).toBe(404);
  });

  test("a freed slot wakes a long-poll waiter", async () => {
    const a = app();
    await a.call("POST", "/v1/errands/batch", {
      errands: [
        { name: "a", type: "work" },
        { name: "b", type: "work" },
      ],
    });
    await a.call("PUT", "/v1/types/work", { concurrency: 1 });
    const first = (await claim(a)).body.results;
    const waiting = a.app
      .handle(new Request("http://localhost/v1/errands/process/work?wait=30", { method: "POST" }))
      .then(async (r) => (await r.json()) as { results: { name: string } });
    await eventually(() => a.waiters.count === 1);
    await a.call("PUT", `/v1/errand/${first.id}/completed`);
    expect((await waiting).results.name).toBe("b");
  });

  test("controls survive a restart; a field left out keeps its value; bad values are 400", async () => {
    const a = app();
    await a.call("PUT", "/v1/types/work", { paused: true, concurrency: 4 });
    await a.call("PUT", "/v1/types/work", { paused: false });
    a.close();
    const b = app({ dir: a.dir });
    const types = (await b.call("GET", "/v1/types")).body.results;
    expect(types[0]).toMatchObject({ type: "work", paused: false, concurrency: 4 });
    expect((await b.call("PUT", "/v1/types/work", { concurrency: 0 })).status).toBe(400);
    expect((await b.call("PUT", "/v1/types/work", { paused: "yes" })).status).toBe(400);
    const cleared = await b.call("PUT", "/v1/types/work", { concurrency: null });
    expect(cleared.body.results.concurrency).toBeNull();
  });
});

describe("per-type counts", () => {
  test("the kept counts match the errands after every kind of change", async () => {
    const a = app();
    // The counts the store keeps as it writes, and the errands counted one by one.
    const counted = () => a.store.reads.countsByTypeAndStatus();
    const actual = async () => {
      const byKey = new Map<string, { type: string; status: string; count: number }>();
      for (const { type, status } of await storedErrands(a)) {
        const row = byKey.get(`${type}\u0000${status}`) ?? { type, status, count: 0 };
        row.count++;
        byKey.set(`${type}\u0000${status}`, row);
      }
      return [...byKey.values()].sort((x, y) =>
        x.type === y.type ? (x.status < y.status ? -1 : 1) : x.type < y.type ? -1 : 1,
      );
    };
    const errands = Array.from({ length: 12 }, (_, i) => ({ name: `e${i}`, type: `t${i % 3}` }));
    await a.call("POST", "/v1/errands/batch", { errands });
    const one = (await claim(a, "t0")).body.results;
    const two = (await claim(a, "t1")).body.results;
    await a.call("PUT", `/v1/errand/${one.id}/completed`);
    await a.call("PUT", `/v1/errand/${two.id}/failed`, { reason: "x" });
    await a.call("DELETE", `/v1/errand/${one.id}`);
    await a.call("POST", "/v1/errands/update/type/t2", { status: "completed" });
    await a.call("POST", "/v1/errands/clear/0s");
    await a.call("POST", "/v1/pipeline/", { name: "p", errands: [{ name: "x", type: "t0" }] });
    // A pipeline whose second errand is unblocked by the first one's completion.
    await a.call("POST", "/v1/pipeline/", {
      name: "q",
      errands: [
        { name: "first", type: "t3" },
        { name: "second", type: "t3" },
      ],
      dependencies: [{ target: "second", dependsOn: "first" }],
    });
    const first = (await claim(a, "t3")).body.results;
    await a.call("PUT", `/v1/errand/${first.id}/completed`);
    expect(await counted()).toEqual(await actual());
    await a.call("POST", "/v1/errands/update/status/inactive", { delete: true });
    expect(await counted()).toEqual(await actual());
    expect((await actual()).length).toBeGreaterThan(0);
  });
});
