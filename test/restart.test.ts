// State survives a restart: a new app on the same storage sees everything acknowledged before.

import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ManualClock } from "../src/clock.ts";
import { makeApp, onPostgres, removeTempDirs, tempDir } from "./harness.ts";

const MIGRATIONS = join(import.meta.dir, "../src/store/sqlite/migrations");
/** The schema version a store is migrated to: one per migration file. */
const NEWEST = readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).length;

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

/** A database in `dir` made by the first `version` migrations only, as an older server left it. */
function storeAtSchema(dir: string, version: number): Database {
  const db = new Database(`${dir}/errands.sqlite`, { create: true });
  db.run("PRAGMA journal_mode = WAL");
  for (const file of readdirSync(MIGRATIONS).sort().slice(0, version)) {
    db.run(readFileSync(join(MIGRATIONS, file), "utf8"));
  }
  db.run(`PRAGMA user_version = ${version}`);
  return db;
}

// The SQLite engine's migrations from its older schema versions.
describe.skipIf(onPostgres)("migrations", () => {
  test("a store of schema 4 moves to 5 with its per-type counts recounted exactly", async () => {
    const dir = tempDir();
    const old = storeAtSchema(dir, 4);
    const insert = old.prepare(
      "INSERT INTO errands (id, name, type, status, created) VALUES (?, 'e', ?, ?, ?)",
    );
    insert.run("a1", "a", "inactive", 1);
    insert.run("a2", "a", "active", 2);
    insert.run("b1", "b", "completed", 3);
    // A count gone wrong under schema 4 is set right by the recount.
    old.run("UPDATE type_counts SET count = 7 WHERE type = 'a' AND status = 'inactive'");
    old.close();

    const a = makeApp({ dir });
    // Through 5, and on to the newest.
    expect(a.store.reader.query("PRAGMA user_version").get()).toEqual({ user_version: NEWEST });
    const types = (await a.call("GET", "/v1/types")).body.results;
    expect(types.map((t: { type: string; counts: object }) => [t.type, t.counts])).toEqual([
      ["a", { active: 1, inactive: 1 }],
      ["b", { completed: 1 }],
    ]);
    // The triggers are gone: a new errand is counted once.
    await a.call("POST", "/v1/errands", { name: "n", type: "a" });
    expect((await a.call("GET", "/v1/types")).body.results[0].counts).toEqual({
      active: 1,
      inactive: 2,
    });
  });

  test("a store of schema 5 moves to 6 with settled pipelines stamped, so clear finds them", async () => {
    const dir = tempDir();
    const old = storeAtSchema(dir, 5);
    const pipeline = old.prepare(
      "INSERT INTO pipelines (id, name, status, started) VALUES (?, ?, ?, 1)",
    );
    const errand = old.prepare(
      "INSERT INTO errands (id, name, type, status, created, finished, pipeline) VALUES (?, ?, 't', ?, 1, ?, ?)",
    );
    pipeline.run("done", "done", "completed");
    errand.run("d1", "a", "completed", 1000, "done");
    errand.run("d2", "b", "completed", 2000, "done");
    pipeline.run("running", "running", "failed");
    errand.run("r1", "a", "failed", 1000, "running");
    errand.run("r2", "b", "active", null, "running");
    old.close();

    const a = makeApp({ dir });
    expect(a.store.reader.query("PRAGMA user_version").get()).toEqual({ user_version: NEWEST });
    expect(a.store.reader.query("SELECT id, finished FROM pipelines ORDER BY id").all()).toEqual([
      { id: "done", finished: 2000 },
      { id: "running", finished: null },
    ]);
    const cleared = (await a.call("POST", "/v1/errands/clear/1s")).body.results;
    expect(cleared.map((e: { id: string }) => e.id).sort()).toEqual(["d1", "d2"]);
  });
});
