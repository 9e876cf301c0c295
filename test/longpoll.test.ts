// Long-poll claims: ?wait=S holds a claim until an errand of the type is queued.

import { describe, expect, test } from "bun:test";
import { type Answer, appsPerTest, fsyncGate, onPostgres, type TestApp } from "./harness.ts";
import { eventually } from "./sse.ts";

const app = appsPerTest();

function claim(a: TestApp, type: string, wait: number, signal?: AbortSignal) {
  const init: RequestInit = { method: "POST" };
  if (signal) init.signal = signal;
  return a.app
    .handle(new Request(`http://localhost/v1/errands/process/${type}?wait=${wait}`, init))
    .then(async (res) => ({ status: res.status, body: (await res.json()) as Answer["body"] }));
}

describe("long-poll claim", () => {
  test("a waiting claim is answered with the errand created after it began waiting", async () => {
    const a = app();
    const pending = claim(a, "extract", 30);
    await eventually(() => a.waiters.count === 1);
    const created = (await a.call("POST", "/v1/errands/", { name: "late", type: "extract" })).body;
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.body.results.id).toBe(created.results.id);
    expect(answer.body.results.status).toBe("active");
    expect(answer.body.results.attempts).toBe(1);
  });

  test("an errand already queued is answered at once, without waiting", async () => {
    const a = app();
    await a.call("POST", "/v1/errands/", { name: "ready", type: "extract" });
    const answer = await claim(a, "extract", 30);
    expect(answer.body.results.name).toBe("ready");
    expect(a.waiters.count).toBe(0);
  });

  test("the older form process?type=T&wait=S waits too", async () => {
    const a = app();
    const pending = a.app
      .handle(new Request("http://localhost/v1/errands/process?type=x&wait=30", { method: "POST" }))
      .then((r) => r.json() as Promise<Answer["body"]>);
    await eventually(() => a.waiters.count === 1);
    await a.call("POST", "/v1/errands/", { name: "n", type: "x" });
    expect((await pending).results.name).toBe("n");
  });

  test("answers 404 No jobs when the wait runs out", async () => {
    const a = app();
    const answer = await claim(a, "nothing", 0.05);
    expect(answer.status).toBe(404);
    expect(answer.body.message).toBe("No jobs");
    expect(a.waiters.count).toBe(0);
  });

  test("an errand of another type does not wake the waiter", async () => {
    const a = app();
    const pending = claim(a, "a", 30);
    await eventually(() => a.waiters.count === 1);
    await a.call("POST", "/v1/errands/", { name: "other", type: "b" });
    expect(a.waiters.count).toBe(1);
    const b = (await a.call("GET", "/v1/errands/list/type/b")).body.results;
    expect(b[0].status).toBe("inactive");
    await a.call("POST", "/v1/errands/", { name: "mine", type: "a" });
    expect((await pending).body.results.name).toBe("mine");
  });

  test("wait must be more than 0 and at most 60 seconds", async () => {
    const a = app();
    for (const wait of ["0", "61", "-1", "soon"]) {
      const res = await a.app.handle(
        new Request(`http://localhost/v1/errands/process/t?wait=${wait}`, { method: "POST" }),
      );
      expect(res.status).toBe(400);
    }
    await a.call("POST", "/v1/errands/", { name: "ready", type: "t" });
    expect((await claim(a, "t", 60)).status).toBe(200);
    await a.call("POST", "/v1/errands/", { name: "ready", type: "t" });
    expect((await claim(a, "t", 0.5)).status).toBe(200);
  });

  test("waiters are served first come, first served", async () => {
    const a = app();
    const order: number[] = [];
    const waits = [0, 1, 2].map(async (n) => {
      await eventually(() => a.waiters.count === n);
      const answer = await claim(a, "fifo", 30);
      order.push(n);
      return { n, name: answer.body.results.name as string };
    });
    await eventually(() => a.waiters.count === 3);
    for (const name of ["first", "second", "third"]) {
      await a.call("POST", "/v1/errands/", { name, type: "fifo" });
    }
    const answers = await Promise.all(waits);
    expect(answers.map((x) => x.name)).toEqual(["first", "second", "third"]);
  });

  // Holds back the SQLite engine's fsync (on PostgreSQL a commit is durable when it returns).
  test.skipIf(onPostgres)(
    "a claim that comes to wait while an errand is being synced queues behind older waiters",
    async () => {
      const sync = fsyncGate();
      const a = app({ env: { ERRANDS_SYNC: "full" }, flush: sync.flush });
      const first = claim(a, "fifo", 30);
      await eventually(() => a.waiters.count === 1);
      sync.hold();
      const created = a.call("POST", "/v1/errands/", { name: "only", type: "fifo" });
      // Committed, not yet on disk: the first waiter has not been told of it.
      await eventually(() => sync.count === 1);
      const second = claim(a, "fifo", 0.2);
      await eventually(() => a.waiters.count === 2);
      sync.open();
      sync.release(0);
      expect((await created).status).toBe(200);
      expect((await first).body.results.name).toBe("only");
      expect((await second).status).toBe(404);
    },
  );

  // Holds back the SQLite engine's fsync (on PostgreSQL a commit is durable when it returns).
  test.skipIf(onPostgres)(
    "a wait that runs out while its claim is being synced still answers the errand",
    async () => {
      const sync = fsyncGate();
      const a = app({ flush: sync.flush });
      const wait = 0.2;
      let answered = false;
      const waiting = claim(a, "slow", wait).finally(() => {
        answered = true;
      });
      await eventually(() => a.waiters.count === 1);
      // The wait began before it was seen queued, so it has run out by this time.
      const waitEnds = performance.now() + wait * 1000;
      // Every sync after the create's is held: the waiter's claim commits but is not on disk.
      a.bus.subscribe(sync.hold);
      const created = (await a.call("POST", "/v1/errands/", { name: "e", type: "slow" })).body;
      await eventually(() => sync.count === 1);
      await eventually(() => performance.now() > waitEnds);
      // Timers run in deadline order: the wait's own, due by now, runs before this one.
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(answered).toBe(false); // its claim is not on disk yet
      sync.releaseAll();
      const answer = await waiting;
      expect(answer.status).toBe(200);
      expect(answer.body.results.id).toBe(created.results.id);
      expect(answer.body.results.status).toBe("active");
    },
  );

  test("100 waiters and 100 creates: each errand goes to exactly one waiter", async () => {
    const a = app();
    const pending = Array.from({ length: 100 }, () => claim(a, "many", 30));
    await eventually(() => a.waiters.count === 100);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        a.call("POST", "/v1/errands/", { name: `e${i}`, type: "many" }),
      ),
    );
    const answers = await Promise.all(pending);
    expect(answers.every((x) => x.status === 200)).toBe(true);
    const ids = answers.map((x) => x.body.results.id);
    expect(new Set(ids).size).toBe(100);
    const active = (await a.call("GET", "/v1/errands/list/status/active")).body.results;
    expect(active.length).toBe(100);
  });

  test("a retry, and a failure with retries left, wake a waiter", async () => {
    const a = app();
    const e = (
      await a.call("POST", "/v1/errands/", { name: "r", type: "t", options: { retries: 1 } })
    ).body.results;
    await a.call("POST", "/v1/errands/process/t");
    const pending = claim(a, "t", 30);
    await eventually(() => a.waiters.count === 1);
    await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "flaky" });
    const again = await pending;
    expect(again.body.results.attempts).toBe(2);

    await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "flaky again" });
    const third = claim(a, "t", 30);
    await eventually(() => a.waiters.count === 1);
    await a.call("POST", `/v1/errand/${e.id}/retry`);
    expect((await third).body.results.attempts).toBe(3);
  });

  test("a waiter whose client went away never takes an errand", async () => {
    const a = app();
    const gone = new AbortController();
    const abandoned = claim(a, "t", 30, gone.signal).catch(() => null);
    await eventually(() => a.waiters.count === 1);
    gone.abort();
    await abandoned;
    await eventually(() => a.waiters.count === 0);
    await a.call("POST", "/v1/errands/", { name: "kept", type: "t" });
    const all = (await a.call("GET", "/v1/errands/")).body.results;
    expect(all[0].status).toBe("inactive");
    expect(all[0].attempts).toBe(0);
  });

  test("a client that goes away after its errand was claimed gives it back to the queue", async () => {
    const a = app();
    const gone = new AbortController();
    const abandoned = claim(a, "t", 30, gone.signal);
    await eventually(() => a.waiters.count === 1);
    // The client leaves in the moment between its claim and the commit that holds it.
    const claimStaged = a.errands.claimStaged.bind(a.errands);
    a.errands.claimStaged = async (type: string) => {
      const staged = await claimStaged(type);
      if (staged.result) gone.abort();
      return staged;
    };
    const created = (await a.call("POST", "/v1/errands/", { name: "back", type: "t" })).body;
    expect(await abandoned).toMatchObject({ status: 404 });
    const logsOf = async () =>
      ((await a.errands.get(created.results.id)).logs ?? []).map((l) => l.message);
    await eventually(async () =>
      (await logsOf()).includes("Released: the claiming worker went away"),
    );
    const released = await a.errands.get(created.results.id);
    expect(released.status).toBe("inactive");
    expect(released.attempts).toBe(0);
    const next = await a.call("POST", "/v1/errands/process/t");
    expect(next.body.results.name).toBe("back");
    expect(next.body.results.attempts).toBe(1);
  });

  test("shutdown answers every waiter at once", async () => {
    const a = app();
    const pending = [claim(a, "t", 60), claim(a, "u", 60)];
    await eventually(() => a.waiters.count === 2);
    a.release();
    const answers = await Promise.all(pending);
    expect(answers.map((x) => x.status)).toEqual([404, 404]);
  });
});
