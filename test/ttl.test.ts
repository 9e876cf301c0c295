// TTL expiry (SPEC §3): an active errand past started + ttl minutes is failed by the sweep.

import { afterAll, describe, expect, test } from "bun:test";
import { createLogger } from "../src/ops/log.ts";
import { makeApp, removeTempDirs, type TestApp } from "./harness.ts";

afterAll(removeTempDirs);

async function claimed(app: TestApp, options: Record<string, unknown>) {
  const type = `t-${crypto.randomUUID()}`;
  await app.call("POST", "/v1/errands", { name: "job", type, options });
  const answer = await app.call("POST", `/v1/errands/process/${type}`);
  expect(answer.status).toBe(200);
  return answer.body.results;
}

async function get(app: TestApp, id: string) {
  return (await app.call("GET", `/v1/errand/${id}`)).body.results;
}

describe("ttl", () => {
  test("an active errand past its TTL is failed with log ERROR TTL Expired", async () => {
    const app = makeApp();
    const { id } = await claimed(app, { ttl: 1 });
    await app.call("PUT", `/v1/errand/${id}`, { progress: 30 });
    app.clock.advance(61_000);
    await app.sweep();
    const errand = await get(app, id);
    expect(errand.status).toBe("failed");
    expect(errand.failed).toBe(app.clock.now());
    expect(errand.progress).toBe(0);
    expect(errand.logs.at(-1)).toEqual({
      severity: "ERROR",
      message: "TTL Expired",
      timestamp: app.clock.now(),
    });
    app.close();
  });

  test("an expiry is one JSON line in the operator's log at info, none at warn", async () => {
    for (const level of ["info", "warn"] as const) {
      const lines: Array<Record<string, unknown>> = [];
      const app = makeApp({
        logger: createLogger(level, (line) => lines.push(JSON.parse(line))),
      });
      const { id, type } = await claimed(app, { ttl: 1 });
      app.clock.advance(61_000);
      await app.sweep();
      const expired = lines.filter((line) => line.msg === "errand expired");
      if (level === "info") {
        expect(expired).toEqual([
          expect.objectContaining({ level: "info", id, type, reason: "TTL Expired" }),
        ]);
      } else {
        expect(expired).toEqual([]);
      }
      app.close();
    }
  });

  test("an expired errand with retries left goes back to the queue", async () => {
    const app = makeApp();
    const { id, type } = await claimed(app, { ttl: 1, retries: 1 });
    app.clock.advance(61_000);
    await app.sweep();
    const errand = await get(app, id);
    expect(errand.status).toBe("inactive");
    expect(errand.logs.at(-1).message).toBe("TTL Expired");

    // The second attempt expires too and, out of retries, fails.
    const again = await app.call("POST", `/v1/errands/process/${type}`);
    expect(again.body.results).toMatchObject({ id, attempts: 2 });
    app.clock.advance(61_000);
    await app.sweep();
    expect((await get(app, id)).status).toBe("failed");
    app.close();
  });

  test("an errand not yet past its TTL is untouched", async () => {
    const app = makeApp();
    const { id } = await claimed(app, { ttl: 1 });
    app.clock.advance(59_000);
    await app.sweep();
    const errand = await get(app, id);
    expect(errand.status).toBe("active");
    expect(errand.logs.map((l: { message: string }) => l.message)).toEqual(["Started!"]);
    app.close();
  });

  test("the TTL counts from the latest claim", async () => {
    const app = makeApp();
    const { id, type } = await claimed(app, { ttl: 2 });
    app.clock.advance(90_000);
    await app.call("POST", `/v1/errand/${id}/retry`);
    await app.call("POST", `/v1/errands/process/${type}`);
    app.clock.advance(90_000);
    await app.sweep();
    expect((await get(app, id)).status).toBe("active");
    app.clock.advance(31_000);
    await app.sweep();
    expect((await get(app, id)).status).toBe("failed");
    app.close();
  });

  test("errands without a ttl, or no longer active, never expire", async () => {
    const app = makeApp();
    const forever = await claimed(app, {});
    const done = await claimed(app, { ttl: 1 });
    const failed = await claimed(app, { ttl: 1 });
    await app.call("PUT", `/v1/errand/${done.id}/completed`, {});
    await app.call("PUT", `/v1/errand/${failed.id}/failed`, { reason: "gave up" });
    app.clock.advance(30 * 24 * 3_600_000);
    await app.sweep();
    expect((await get(app, forever.id)).status).toBe("active");
    const completed = await get(app, done.id);
    expect(completed.status).toBe("completed");
    expect(completed.logs.at(-1).message).toBe("Completed!");
    expect((await get(app, failed.id)).logs.at(-1).message).toBe("gave up");
    app.close();
  });

  test("an inactive errand with a ttl is not expired while it waits", async () => {
    const app = makeApp();
    const type = `t-${crypto.randomUUID()}`;
    const created = await app.call("POST", "/v1/errands", {
      name: "job",
      type,
      options: { ttl: 1 },
    });
    const { id } = created.body.results;
    app.clock.advance(10 * 60_000);
    await app.sweep();
    expect((await get(app, id)).status).toBe("inactive");
    expect((await get(app, id)).logs).toBeUndefined();
    app.close();
  });
});
