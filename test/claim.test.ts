// Claiming errands (SPEC §3 "process"): order, what a claim changes, and concurrent claims.

import type { Statement } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import type { WriteTx } from "../src/store/driver.ts";
import { WriteStatements } from "../src/store/sqlite/access.ts";
import {
  fsyncGate,
  makeApp,
  onPostgres,
  removeTempDirs,
  sqlitePlanOf,
  type TestApp,
  withExplainedTx,
} from "./harness.ts";
import { eventually } from "./sse.ts";

afterAll(removeTempDirs);

async function create(app: TestApp, spec: Record<string, unknown>) {
  const answer = await app.call("POST", "/v1/errands", { name: "job", type: "work", ...spec });
  expect(answer.status).toBe(200);
  return answer.body.results;
}

async function claim(app: TestApp, type: string) {
  return app.call("POST", `/v1/errands/process/${type}`);
}

describe("claim order", () => {
  test("claim takes the highest priority first, then the oldest created", async () => {
    const app = makeApp();
    const names: Array<[string, number]> = [
      ["low-old", 1],
      ["high-old", 10],
      ["mid", 5],
      ["high-new", 10],
      ["none", 0],
      ["negative", -3],
      ["low-new", 1],
    ];
    for (const [name, priority] of names) {
      await create(app, { name, options: { priority } });
      app.clock.advance(1000);
    }
    const order: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const answer = await claim(app, "work");
      expect(answer.status).toBe(200);
      order.push(answer.body.results.name);
    }
    expect(order).toEqual([
      "high-old",
      "high-new",
      "mid",
      "low-old",
      "low-new",
      "none",
      "negative",
    ]);
    app.close();
  });

  test("among equal priorities the oldest created is claimed first, whatever the insert order of ids", async () => {
    const app = makeApp();
    // Created later in wall-clock order but with an older clock reading.
    await create(app, { name: "newer" });
    app.clock.advance(-60_000);
    await create(app, { name: "older" });
    expect((await claim(app, "work")).body.results.name).toBe("older");
    expect((await claim(app, "work")).body.results.name).toBe("newer");
    app.close();
  });

  test("claim skips errands of other types", async () => {
    const app = makeApp();
    await create(app, { type: "other", name: "first", options: { priority: 100 } });
    app.clock.advance(1000);
    await create(app, { type: "mine", name: "mine" });
    const answer = await claim(app, "mine");
    expect(answer.body.results.name).toBe("mine");
    expect(answer.body.results.type).toBe("mine");
    expect((await claim(app, "mine")).status).toBe(404);
    expect((await claim(app, "other")).body.results.name).toBe("first");
    app.close();
  });

  test("claim only takes inactive errands", async () => {
    const app = makeApp();
    for (const status of ["active", "failed", "completed", "blocked"]) {
      const { id } = await create(app, { type: status, name: status });
      await app.call("POST", `/v1/errands/update/type/${status}`, { status });
      expect((await app.call("GET", `/v1/errand/${id}`)).body.results.status).toBe(status);
      expect((await claim(app, status)).status).toBe(404);
    }
    app.close();
  });
});

describe("what a claim changes", () => {
  test("claim sets active, started now, attempts + 1, progress 0, and logs Started!", async () => {
    const app = makeApp();
    const { id } = await create(app, { type: "t" });
    app.clock.advance(5000);
    const first = (await claim(app, "t")).body.results;
    expect(first).toMatchObject({ id, status: "active", started: app.clock.now(), attempts: 1 });
    expect(first.progress).toBe(0);
    expect(first.logs).toEqual([
      { severity: "INFO", message: "Started!", timestamp: app.clock.now() },
    ]);

    // Back in the queue with its progress kept, then claimed again.
    await app.call("PUT", `/v1/errand/${id}`, { progress: 70 });
    await app.call("POST", "/v1/errands/update/type/t", { status: "inactive" });
    expect((await app.call("GET", `/v1/errand/${id}`)).body.results.progress).toBe(70);
    app.clock.advance(5000);
    const second = (await claim(app, "t")).body.results;
    expect(second).toMatchObject({ id, status: "active", started: app.clock.now(), attempts: 2 });
    expect(second.progress).toBe(0);
    expect(second.logs.map((l: { message: string }) => l.message)).toEqual([
      "Started!",
      "Started!",
    ]);
    expect((await app.call("GET", `/v1/errand/${id}`)).body.results).toEqual(second);
    app.close();
  });

  test("POST /v1/errands/process?type=T claims like /process/:type", async () => {
    const app = makeApp();
    const { id } = await create(app, { type: "legacy" });
    await create(app, { type: "other" });
    const answer = await app.call("POST", "/v1/errands/process?type=legacy");
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("OK");
    expect(answer.body.results).toMatchObject({ id, status: "active", attempts: 1 });
    const none = await app.call("POST", "/v1/errands/process?type=legacy");
    expect(none.status).toBe(404);
    expect(none.body.message).toBe("No jobs");
    app.close();
  });

  test("a claim with no errand waiting is 404 No jobs", async () => {
    const app = makeApp();
    const answer = await claim(app, "empty");
    expect(answer.status).toBe(404);
    expect(answer.body.message).toBe("No jobs");
    expect(typeof answer.body.error).toBe("string");
    app.close();
  });

  test("a claim without a type is 400", async () => {
    const app = makeApp();
    const answer = await app.call("POST", "/v1/errands/process");
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(/type/);
    app.close();
  });
});

// In one process the claims of concurrent requests run one at a time; what can go wrong is a
// claim not seeing an earlier one of the same open transaction. Claims over real sockets, from
// many connections at once, are driven against the binary in binary.test.ts. The SQLite
// engine's group commit: on PostgreSQL each claim is a transaction of its own.
describe.skipIf(onPostgres)("claims that share one commit", () => {
  /**
   * An app and `together(n, type)`: n claims queued behind a commit whose fsync is held back,
   * so that they all go in the one next commit; answers them, and the commits and writes made
   * from then on.
   */
  function sharedCommit() {
    const sync = fsyncGate();
    const app = makeApp({ flush: sync.flush });
    /** Claims made so far, as the writer sees them with its open group. */
    const claimsMade = () =>
      (
        app.store.writer
          .query("SELECT count(*) AS n FROM errand_logs WHERE message = 'Started!'")
          .get() as { n: number }
      ).n;
    const together = async (n: number, type: string) => {
      sync.hold();
      const opener = app.call("PUT", "/v1/types/unrelated", { paused: false });
      await eventually(() => sync.count === 1);
      sync.open();
      const [commits, writes, made] = [app.store.commits, app.store.committedWrites, claimsMade()];
      let refused = 0;
      const answers = Array.from({ length: n }, () =>
        claim(app, type).then((answer) => {
          if (answer.status === 404) refused++;
          return answer;
        }),
      );
      // Every claim has run in the open group: it took an errand or found none.
      await eventually(() => claimsMade() - made + refused === n);
      sync.release(0);
      expect((await opener).status).toBe(200);
      const all = await Promise.all(answers);
      const commit = [app.store.commits - commits, app.store.committedWrites - writes];
      return { answers: all, commit };
    };
    return { app, together };
  }

  test("50 claims in one commit over 50 errands: each sees those before it, none is taken twice", async () => {
    const { app, together } = sharedCommit();
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add((await create(app, { type: "busy", name: `e${i}` })).id);
    const { answers, commit } = await together(50, "busy");
    expect(commit).toEqual([1, 50]);
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    const claimed = answers.map((a) => a.body.results.id as string);
    expect(new Set(claimed).size).toBe(50);
    expect(new Set(claimed)).toEqual(ids);
    for (const a of answers) expect(a.body.results.attempts).toBe(1);
    const active = await app.call("GET", "/v1/errands/list/status/active");
    expect(active.body.results).toHaveLength(50);
    app.close();
  });

  test("50 claims in one commit over 30 errands: 30 distinct errands and 20 No jobs", async () => {
    const { app, together } = sharedCommit();
    for (let i = 0; i < 30; i++) await create(app, { type: "scarce", name: `e${i}` });
    const { answers, commit } = await together(50, "scarce");
    expect(commit).toEqual([1, 50]);
    const ok = answers.filter((a) => a.status === 200);
    const none = answers.filter((a) => a.status === 404);
    expect(ok).toHaveLength(30);
    expect(none).toHaveLength(20);
    expect(new Set(ok.map((a) => a.body.results.id)).size).toBe(30);
    for (const a of none) expect(a.body.message).toBe("No jobs");
    app.close();
  });
});

// SQLite's query plans.
describe.skipIf(onPostgres)("cost", () => {
  test("claims, expiry, schedules and clear read an index, never a whole table", async () => {
    const app = makeApp();
    const specs = Array.from({ length: 200 }, (_, i) => ({
      name: `e${i}`,
      type: `t${i % 4}`,
      options: { ttl: 5, heartbeat: 30, priority: i % 3 },
    }));
    await app.call("POST", "/v1/errands/batch", { errands: specs });
    await claim(app, "t1");
    // No ANALYZE: a new store has no statistics, and the plans must hold without them.
    const statements = new WriteStatements(app.store.writer);
    const sql = statements.errandWrites;
    const take = sql.take(1) as unknown as Statement;
    const activeCount = sql.activeCount as unknown as Statement;
    const now = app.clock.now();
    sql.take(1).get("t2");
    sql.activeCount.get("t2");
    sql.overdue.all(now, 100);
    sql.silent.all(now, 100);
    sql.due.all(now, 100);
    sql.finishedBefore.all(now, 100);
    const pipelines = statements.pipelineWrites;
    pipelines.finishedBefore.all(now, 100);
    const plans: Array<[Statement, string]> = [
      [take, "errands_claim"],
      // A type's concurrency is checked against the errands active, counted on their index.
      [activeCount, "errands_active"],
      [sql.overdue, "errands_ttl"],
      [sql.silent, "errands_heartbeat"],
      [sql.due, "errands_due"],
      [sql.finishedBefore, "errands_finished"],
      [pipelines.finishedBefore, "pipelines_finished"],
    ];
    for (const [statement, index] of plans) {
      const plan = sqlitePlanOf(app, statement);
      expect(plan.some((step) => step.includes(`INDEX ${index}`))).toBe(true);
      expect(plan.filter((step) => /^SCAN (errands|pipelines)\b(?! USING)/.test(step))).toEqual([]);
    }
    app.close();
  });
});

describe.skipIf(onPostgres)("cost of a claim on SQLite", () => {
  test("the take has its count written in, one statement per count: a bound LIMIT is prepared again at every run", () => {
    const app = makeApp();
    const writes = new WriteStatements(app.store.writer).errandWrites;
    const take = writes.take(3);
    expect(writes.take(3)).toBe(take);
    expect(writes.take(4)).not.toBe(take);
    // The type is its one parameter: the count is in the text, not bound.
    expect(take.paramsCount).toBe(1);
    expect(() => writes.take(0)).toThrow(RangeError);
    expect(() => writes.take(1.5)).toThrow(RangeError);
  });
});

describe.skipIf(!onPostgres)("cost on PostgreSQL", () => {
  test("claims, expiry, schedules and clear each have an index to read, never a whole table", async () => {
    const app = makeApp();
    const specs = Array.from({ length: 200 }, (_, i) => ({
      name: `e${i}`,
      type: `t${i % 4}`,
      options: { ttl: 5, heartbeat: 30, priority: i % 3 },
    }));
    await app.call("POST", "/v1/errands/batch", { errands: specs });
    await claim(app, "t1");
    // With a limit, a claim counts the type's active errands.
    await app.call("PUT", "/v1/types/t2", { concurrency: 100 });
    await withExplainedTx(app, async (tx, plansOf) => {
      const now = app.clock.now();
      const cases: Array<[() => Promise<unknown>, string[]]> = [
        [() => tx.nextClaimable("t2", now), ["errands_active", "errands_claim"]],
        [() => tx.overdueIds(now, 100), ["errands_ttl"]],
        [() => tx.silentIds(now, 100), ["errands_heartbeat"]],
        [() => tx.dueIds(now, 100), ["errands_due"]],
        [() => tx.finishedBefore(now, 100), ["errands_finished"]],
        [() => tx.settledBefore(now, 100), ["pipelines_finished"]],
      ];
      for (const [run, indexes] of cases) {
        const plan = await plansOf(run);
        for (const index of indexes) expect(plan).toMatch(new RegExp(`(using|on) ${index} `));
        expect(plan).not.toMatch(/Seq Scan on (errands|pipelines)\b/);
      }
    });
    app.close();
  });
});

describe("a client that goes away", () => {
  // Most of these hold back the SQLite engine's fsync, to leave while a claim syncs.
  /** An app whose fsyncs can be held back, and a request that the test can abort. */
  function held() {
    const sync = fsyncGate();
    const app = makeApp({ flush: sync.flush });
    const send = (method: string, path: string, body?: unknown) => {
      const gone = new AbortController();
      const init: RequestInit = { method, signal: gone.signal };
      if (body !== undefined) init.body = JSON.stringify(body);
      const answer = app.app
        .handle(new Request(`http://localhost${path}`, init))
        .then((res) => res.json() as Promise<{ results?: { id: string }; next?: unknown }>);
      return { answer, leave: () => gone.abort() };
    };
    return {
      app,
      send,
      holdSyncs: sync.hold,
      releaseSyncs: sync.releaseAll,
      syncsHeld: () => sync.count,
    };
  }

  async function statusOf(app: TestApp, id: string) {
    const errand = (await app.call("GET", `/v1/errand/${id}`)).body.results;
    return { status: errand.status, attempts: errand.attempts, last: errand.logs?.at(-1)?.message };
  }

  /** Waits until the errand reads back with `status` (the release commits after the answer). */
  async function reaches(app: TestApp, id: string, status: string) {
    for (let i = 0; i < 1000 && (await statusOf(app, id)).status !== status; i++) {
      await Bun.sleep(2);
    }
  }

  test("while its claim is being written: the errand goes back to the queue", async () => {
    const app = makeApp();
    const { id } = await create(app, { type: "left" });
    const gone = new AbortController();
    // The client leaves as the claim's write starts.
    const stage = app.store.stage.bind(app.store);
    app.store.stage = <T>(fn: (tx: WriteTx) => Promise<T>) => {
      app.store.stage = stage;
      const staged = stage(fn);
      gone.abort();
      return staged;
    };
    const request = new Request("http://localhost/v1/errands/process/left", {
      method: "POST",
      signal: gone.signal,
    });
    await app.app.handle(request).catch(() => null);
    await reaches(app, id, "inactive");
    expect(await statusOf(app, id)).toEqual({
      status: "inactive",
      attempts: 0,
      last: "Released: the claiming worker went away",
    });
    expect((await claim(app, "left")).body.results.id).toBe(id);
    app.close();
  });

  test.skipIf(onPostgres)(
    "before its claim is on disk: the errand goes back to the queue",
    async () => {
      const { app, send, holdSyncs, releaseSyncs, syncsHeld } = held();
      const { id } = await create(app, { type: "gone" });
      holdSyncs();
      const claiming = send("POST", "/v1/errands/process/gone");
      await eventually(() => syncsHeld() === 1);
      claiming.leave();
      releaseSyncs();
      await claiming.answer.catch(() => null);
      await reaches(app, id, "inactive");
      expect(await statusOf(app, id)).toEqual({
        status: "inactive",
        attempts: 0,
        last: "Released: the claiming worker went away",
      });
      expect((await claim(app, "gone")).body.results.id).toBe(id);
      app.close();
    },
  );

  test.skipIf(onPostgres)(
    "even if the store closes while that claim syncs, the errand is back after a restart",
    async () => {
      const { app, send, holdSyncs, releaseSyncs, syncsHeld } = held();
      const { id } = await create(app, { type: "closing" });
      holdSyncs();
      const claiming = send("POST", "/v1/errands/process/closing");
      await eventually(() => syncsHeld() === 1);
      claiming.leave();
      const closed = app.close(); // as on SIGTERM, with the claim's sync in flight
      releaseSyncs();
      await closed;
      await claiming.answer.catch(() => null);
      const again = makeApp({ dir: app.dir });
      expect(await statusOf(again, id)).toMatchObject({ status: "inactive", attempts: 0 });
      again.close();
    },
  );

  test.skipIf(onPostgres)(
    "a released retry keeps its start: its pipeline stays active",
    async () => {
      const { app, send, holdSyncs, releaseSyncs, syncsHeld } = held();
      const made = await app.call("POST", "/v1/pipeline/", {
        name: "p",
        errands: [{ name: "x", type: "again", options: { retries: 1 } }],
      });
      const pipelineId = made.body.results.id;
      const first = (await claim(app, "again")).body.results;
      await app.call("PUT", `/v1/errand/${first.id}/failed`, { reason: "once" });
      holdSyncs();
      const claiming = send("POST", "/v1/errands/process/again");
      await eventually(() => syncsHeld() === 1);
      claiming.leave();
      releaseSyncs();
      await claiming.answer.catch(() => null);
      await reaches(app, first.id, "inactive");
      expect(await statusOf(app, first.id)).toMatchObject({ status: "inactive", attempts: 1 });
      expect((await app.call("GET", `/v1/errand/${first.id}`)).body.results.started).toBeDefined();
      expect((await app.call("GET", `/v1/pipeline/${pipelineId}`)).body.results.status).toBe(
        "active",
      );
      app.close();
    },
  );

  test.skipIf(onPostgres)(
    "during complete?next=true: the completion stands, the next errand goes back",
    async () => {
      const { app, send, holdSyncs, releaseSyncs, syncsHeld } = held();
      const first = await create(app, { type: "chain" });
      const second = await create(app, { type: "chain" });
      expect((await claim(app, "chain")).body.results.id).toBe(first.id);
      holdSyncs();
      const completing = send("PUT", `/v1/errand/${first.id}/completed?next=true`, {});
      await eventually(() => syncsHeld() === 1);
      completing.leave();
      releaseSyncs();
      await completing.answer.catch(() => null);
      await reaches(app, second.id, "inactive");
      expect((await statusOf(app, first.id)).status).toBe("completed");
      expect(await statusOf(app, second.id)).toMatchObject({ status: "inactive", attempts: 0 });
      app.close();
    },
  );
});
