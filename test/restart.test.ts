// State survives a restart: a new app on the same storage sees everything acknowledged before.

import { afterAll, describe, expect, test } from "bun:test";
import { ManualClock } from "../src/clock.ts";
import { makeApp, removeTempDirs } from "./harness.ts";

afterAll(removeTempDirs);

describe("restart", () => {
  test("errands, their logs, results and statuses survive closing and reopening the store", async () => {
    const first = makeApp();
    const make = async (name: string, type: string, extra: Record<string, unknown> = {}) =>
      (await first.call("POST", "/v1/errands", { name, type, ...extra })).body.results;

    const done = await make("done", "a", { data: { file: "k" }, options: { retries: 3 } });
    await first.call("POST", "/v1/errands/process/a");
    await first.call("POST", `/v1/errand/${done.id}/log`, { severity: "WARNING", message: "slow" });
    await first.call("PUT", `/v1/errand/${done.id}/completed`, { results: { rows: 42 } });

    const running = await make("running", "b", { options: { ttl: 10 } });
    await first.call("POST", "/v1/errands/process/b");
    await first.call("PUT", `/v1/errand/${running.id}`, { progress: 33 });

    const failed = await make("failed", "c");
    await first.call("POST", "/v1/errands/process/c");
    await first.call("PUT", `/v1/errand/${failed.id}/failed`, { reason: "boom" });

    await make("waiting-low", "d", { options: { priority: 1 } });
    first.clock.advance(1000);
    await make("waiting-high", "d", { options: { priority: 9 } });

    const before = (await first.call("GET", "/v1/errands")).body.results;
    expect(before).toHaveLength(5);
    first.close();

    const clock = new ManualClock(first.clock.now());
    const second = makeApp({ dir: first.dir, clock });
    expect(second.store.path).toBe(first.store.path);
    const after = (await second.call("GET", "/v1/errands")).body.results;
    expect(after).toEqual(before);

    const got = (await second.call("GET", `/v1/errand/${done.id}`)).body.results;
    expect(got.status).toBe("completed");
    expect(got.results).toEqual({ rows: 42 });
    expect(got.data).toEqual({ file: "k" });
    expect(got.logs.map((l: { message: string }) => l.message)).toEqual([
      "Started!",
      "slow",
      "Completed!",
    ]);

    // The queue order and the TTL deadline were stored too.
    const next = await second.call("POST", "/v1/errands/process/d");
    expect(next.body.results.name).toBe("waiting-high");
    clock.advance(10 * 60_000 + 1);
    await second.sweep();
    const expired = (await second.call("GET", `/v1/errand/${running.id}`)).body.results;
    expect(expired.status).toBe("failed");
    expect(expired.logs.at(-1).message).toBe("TTL Expired");

    // New writes after the restart land next to the old ones.
    const added = await second.call("POST", "/v1/errands", { name: "new", type: "e" });
    expect(added.status).toBe(200);
    expect((await second.call("GET", "/v1/errands")).body.results).toHaveLength(6);
    second.close();
  });

  test("a write acknowledged just before close is kept", async () => {
    const first = makeApp();
    const created = await first.call("POST", "/v1/errands", { name: "last", type: "t" });
    expect(created.status).toBe(200);
    first.close();
    const second = makeApp({ dir: first.dir });
    const got = await second.call("GET", `/v1/errand/${created.body.results.id}`);
    expect(got.status).toBe(200);
    expect(got.body.results).toEqual(created.body.results);
    second.close();
  });
});
