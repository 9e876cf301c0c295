// Group commit, batch create, complete-and-claim-next, and what a 2xx promises.

import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { fsync, realpathSync } from "node:fs";
import { StorageUnavailable } from "../src/errors.ts";
import { deleteInBatches } from "../src/store/driver.ts";
import { SqliteDriver } from "../src/store/sqlite/driver.ts";
import {
  type Answer,
  appsPerTest,
  fileOf,
  fsyncGate,
  onPostgres,
  onSchema,
  storedErrands,
  type TestApp,
  tempDir,
} from "./harness.ts";
import { eventually } from "./sse.ts";

const app = appsPerTest();

/** Errands stored and committed, as the engine's reads see them. */
const count = async (a: TestApp) => (await storedErrands(a)).length;

/** Errands stored, as the SQLite engine's writer sees them, with its open group. */
const countInGroup = (a: TestApp) =>
  (a.store.writer.query("SELECT count(*) AS n FROM errands").get() as { n: number }).n;

/** The per-type counts as GET /v1/types answers them, read from the stored table. */
const counts = async (a: TestApp) =>
  Object.fromEntries(
    (await a.call("GET", "/v1/types")).body.results.map(
      (t: { type: string; counts: Record<string, number> }) => [t.type, t.counts],
    ),
  );

describe("group commit", () => {
  // The SQLite engine's journal mode.
  test.skipIf(onPostgres)("the database is in WAL mode, and stays so when reopened", async () => {
    const a = app();
    const mode = () => a.store.writer.query("PRAGMA journal_mode").get();
    expect(mode()).toEqual({ journal_mode: "wal" });
    const file = new Database(a.store.path, { readonly: true });
    expect(file.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    file.close();
  });

  // The SQLite engine's group commit.
  test.skipIf(onPostgres)(
    "writes started in one turn of the event loop share one commit",
    async () => {
      const a = app();
      const [commits, writes] = [a.store.commits, a.store.committedWrites];
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => a.errands.create({ name: `e${i}`, type: "t" })),
      );
      expect([a.store.commits - commits, a.store.committedWrites - writes]).toEqual([1, 20]);
      expect(await count(a)).toBe(20);
    },
  );

  // The SQLite engine's group commit, with its fsync held back.
  test.skipIf(onPostgres)(
    "requests that arrive over several turns while a commit syncs all go in its next commit",
    async () => {
      const sync = fsyncGate(true);
      const a = app({ env: { ERRANDS_SYNC: "full" }, flush: sync.flush });
      const first = a.call("POST", "/v1/errands/", { name: "first", type: "t" });
      await eventually(() => sync.count === 1);
      const [commits, writes] = [a.store.commits, a.store.committedWrites];
      let answered = 0;
      const later: Promise<Answer>[] = [];
      // Four turns of five requests: each turn would be a group of its own without a sync in flight.
      for (let turn = 0; turn < 4; turn++) {
        for (let i = 0; i < 5; i++) {
          const create = a.call("POST", "/v1/errands/", { name: `e${turn}.${i}`, type: "t" });
          later.push(create.finally(() => answered++));
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      // The writer sees its own open transaction: every create is in it, none committed.
      await eventually(() => countInGroup(a) === 21);
      expect([a.store.commits, answered]).toEqual([commits, 0]);
      sync.release(0);
      expect((await first).status).toBe(200);
      await eventually(() => sync.count === 2);
      expect([a.store.commits - commits, a.store.committedWrites - writes]).toEqual([1, 20]);
      expect(answered).toBe(0); // committed, but not answered before its fsync
      sync.open();
      sync.release(1);
      expect((await Promise.all(later)).map((x) => x.status)).toEqual(Array(20).fill(200));
    },
  );

  // The SQLite engine's fsync.
  test.skipIf(onPostgres)(
    "with ERRANDS_SYNC=full each commit fsyncs the database's WAL file, and no other",
    async () => {
      const files: string[] = [];
      const a = app({
        env: { ERRANDS_SYNC: "full" },
        flush: (fd) => {
          files.push(fileOf(fd));
          return new Promise<void>((resolve, reject) =>
            fsync(fd, (error) => (error ? reject(error) : resolve())),
          );
        },
      });
      for (let i = 0; i < 3; i++)
        await a.call("POST", "/v1/errands/", { name: `e${i}`, type: "t" });
      const e = (await a.call("POST", "/v1/errands/process/t")).body.results;
      await a.call("PUT", `/v1/errand/${e.id}/completed`, { results: { ok: true } });
      expect(a.store.commits).toBeGreaterThanOrEqual(5);
      expect(files).toEqual(Array(a.store.commits).fill(realpathSync(`${a.store.path}-wal`)));
    },
  );

  test("a request that fails rolls back only its own changes in the group", async () => {
    const a = app();
    const e = (await a.call("POST", "/v1/errands/", { name: "e", type: "t" })).body.results;
    const [good, bad] = await Promise.all([
      a.call("POST", "/v1/errands/", { name: "f", type: "t" }),
      a.call("PUT", `/v1/errand/${e.id}`, { progress: 5 }), // not active: 409
    ]);
    expect(good.status).toBe(200);
    expect(bad.status).toBe(409);
    expect(await count(a)).toBe(2);
  });

  test("a write that fails after counting an errand takes its count back", async () => {
    const a = app();
    if (onPostgres) {
      await onSchema(
        a,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
      );
      await onSchema(
        a,
        "CREATE TRIGGER refuse BEFORE INSERT ON errands FOR EACH ROW WHEN (new.name = 'bad') EXECUTE FUNCTION refuse()",
      );
    } else {
      a.store.writer.run(
        "CREATE TRIGGER refuse BEFORE INSERT ON errands WHEN new.name = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END",
      );
    }
    // At once (on SQLite, in one group): a batch whose second insert fails after its first was
    // counted, and a create that succeeds.
    const [batch, good] = await Promise.all([
      a.call("POST", "/v1/errands/batch", {
        errands: [
          { name: "ok", type: "t" },
          { name: "bad", type: "t" },
        ],
      }),
      a.call("POST", "/v1/errands/", { name: "good", type: "t" }),
    ]);
    expect(batch.status).toBe(503);
    expect(good.status).toBe(200);
    expect(await count(a)).toBe(1);
    expect(await counts(a)).toEqual({ t: { inactive: 1 } });
  });

  test("while a commit is syncing, later writes gather in one group, committed when it ends", async () => {
    const held: Array<() => void> = [];
    const files: string[] = [];
    const store = new SqliteDriver(`${tempDir()}/held.sqlite`, {
      sync: "full",
      flush: (fd) => {
        files.push(fileOf(fd));
        return new Promise<void>((resolve) => held.push(resolve));
      },
    });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const first = store.write(async () => "first");
    await turn();
    expect([store.commits, held.length]).toEqual([1, 1]); // committed, its sync in flight
    // Writes of three later turns: none commits while that sync runs.
    const later: Promise<string>[] = [];
    for (const name of ["a", "b", "c"]) {
      later.push(store.write(async () => name));
      await turn();
    }
    expect(store.commits).toBe(1);
    held[0]?.();
    expect(await first).toBe("first");
    await eventually(() => held.length === 2);
    expect([store.commits, store.committedWrites]).toEqual([2, 4]);
    held[1]?.();
    expect(await Promise.all(later)).toEqual(["a", "b", "c"]);
    expect(files).toEqual(Array(2).fill(realpathSync(`${store.path}-wal`)));
    await store.close();
  });

  // The SQLite engine's group commit: every write of the group shares the failed commit.
  test.skipIf(onPostgres)(
    "a failed commit answers 503 to every request of its group and changes nothing",
    async () => {
      const a = app();
      await a.call("POST", "/v1/errands/", { name: "before", type: "t" });
      // A deferred foreign key is checked at COMMIT only: an errand named "poison" makes the
      // commit of whatever group holds it fail.
      a.store.writer.run("PRAGMA foreign_keys = ON");
      a.store.writer.run("CREATE TABLE parent (y INTEGER PRIMARY KEY)");
      a.store.writer.run(
        "CREATE TABLE guard (x INTEGER REFERENCES parent (y) DEFERRABLE INITIALLY DEFERRED)",
      );
      a.store.writer.run(
        "CREATE TRIGGER poison AFTER INSERT ON errands WHEN new.name = 'poison' BEGIN INSERT INTO guard VALUES (1); END",
      );
      const events = (
        a.store.reader.query("SELECT count(*) AS n FROM events").get() as { n: number }
      ).n;
      const published: unknown[] = [];
      a.bus.subscribe((event) => published.push(event));

      // Started in one turn of the event loop, these three writes share one group.
      const group = await Promise.allSettled([
        a.errands.create({ name: "one", type: "t" }),
        a.errands.create({ name: "poison", type: "t" }),
        a.errands.claim("t"),
      ]);
      expect(group.map((x) => x.status)).toEqual(["rejected", "rejected", "rejected"]);
      for (const x of group) {
        expect(x.status === "rejected" && x.reason).toBeInstanceOf(StorageUnavailable);
      }
      // Over HTTP, such a failure is a 503 with the error envelope.
      const answer = await a.call("POST", "/v1/errands/", { name: "poison", type: "t" });
      expect(answer.status).toBe(503);
      expect(answer.body.message).toBe("Storage unavailable");
      expect(await count(a)).toBe(1);
      expect(await counts(a)).toEqual({ t: { inactive: 1 } });
      expect((await a.call("GET", "/v1/errands/list/status/inactive")).body.results.length).toBe(1);
      expect(
        (a.store.reader.query("SELECT count(*) AS n FROM events").get() as { n: number }).n,
      ).toBe(events);
      expect(published).toEqual([]);

      // The server keeps serving.
      const after = await a.call("POST", "/v1/errands/", { name: "after", type: "t" });
      expect(after.status).toBe(200);
      expect(await count(a)).toBe(2);
      expect(await counts(a)).toEqual({ t: { inactive: 2 } });
    },
  );

  test.skipIf(!onPostgres)("a failed commit answers 503 and changes nothing", async () => {
    const a = app();
    await a.call("POST", "/v1/errands/", { name: "before", type: "t" });
    // A deferred constraint trigger runs at COMMIT only: an errand named "poison" makes the
    // commit of the write that holds it fail.
    await onSchema(
      a,
      "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'poisoned'; END $$",
    );
    await onSchema(
      a,
      `CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON errands DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW WHEN (new.name = 'poison') EXECUTE FUNCTION poison()`,
    );
    await a.eventsHeard();
    const events = (await a.store.reads.eventBounds()).newest;
    const published: Array<{ event: string; errand: unknown }> = [];
    a.bus.subscribe((event) => published.push(event));

    const poisoned = await a.errands.create({ name: "poison", type: "t" }).catch((e) => e);
    expect(poisoned).toBeInstanceOf(StorageUnavailable);
    // Over HTTP, such a failure is a 503 with the error envelope.
    const answer = await a.call("POST", "/v1/errands/", { name: "poison", type: "t" });
    expect(answer.status).toBe(503);
    expect(answer.body.message).toBe("Storage unavailable");
    expect(await count(a)).toBe(1);
    expect(await counts(a)).toEqual({ t: { inactive: 1 } });
    expect((await a.call("GET", "/v1/errands/list/status/inactive")).body.results.length).toBe(1);
    await a.eventsHeard();
    expect((await a.store.reads.eventBounds()).newest).toBe(events);
    expect(published).toEqual([]);

    // The server keeps serving.
    const after = await a.call("POST", "/v1/errands/", { name: "after", type: "t" });
    expect(after.status).toBe(200);
    expect(await count(a)).toBe(2);
    expect(await counts(a)).toEqual({ t: { inactive: 2 } });
    await a.eventsHeard();
    expect(published.map((e) => [e.event, e.errand])).toEqual([["created", after.body.results]]);
  });

  test("a write answered 2xx survives reopening the file, in both sync modes", async () => {
    for (const sync of ["full", "normal"]) {
      const a = app({ env: { ERRANDS_SYNC: sync } });
      const e = (await a.call("POST", "/v1/errands/", { name: sync, type: "t" })).body.results;
      a.close();
      const b = app({ dir: a.dir });
      expect((await b.call("GET", `/v1/errand/${e.id}`)).body.results.name).toBe(sync);
    }
  });
});

describe("deletes in batches", () => {
  // Counts the SQLite engine's commits of deletes from a table of its own.
  test.skipIf(onPostgres)(
    "each batch is its own write, until one deletes fewer, or the rounds run out",
    async () => {
      const a = app();
      a.store.writer.run("CREATE TABLE chaff (n INTEGER)");
      for (let i = 0; i < 25; i++) a.store.writer.run("INSERT INTO chaff VALUES (?)", [i]);
      const remove = async (_tx: unknown, n: number) =>
        a.store.writer.run("DELETE FROM chaff WHERE rowid IN (SELECT rowid FROM chaff LIMIT ?)", [
          n,
        ]).changes;
      const left = () => a.store.writer.query("SELECT count(*) AS n FROM chaff").get();
      let commits = a.store.commits;
      expect(await deleteInBatches(a.store, remove, 10, 2)).toBe(20);
      expect([a.store.commits - commits, left()]).toEqual([2, { n: 5 }]);
      commits = a.store.commits;
      expect(await deleteInBatches(a.store, remove, 10)).toBe(5);
      expect([a.store.commits - commits, left()]).toEqual([1, { n: 0 }]);
    },
  );
});

describe("batch create", () => {
  test("creates every errand in one transaction and answers them in order", async () => {
    const a = app();
    const specs = Array.from({ length: 50 }, (_, i) => ({ name: `b${i}`, type: "batch" }));
    const answer = await a.call("POST", "/v1/errands/batch", { errands: specs });
    expect(answer.status).toBe(200);
    expect(answer.body.results.map((e: { name: string }) => e.name)).toEqual(
      specs.map((s) => s.name),
    );
    expect(await count(a)).toBe(50);
  });

  test("one invalid errand refuses the whole batch and creates none", async () => {
    const a = app();
    const specs = [
      { name: "ok", type: "t" },
      { name: "", type: "t" },
      { name: "ok2", type: "t" },
    ];
    const answer = await a.call("POST", "/v1/errands/batch/", { errands: specs });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toContain("errands");
    expect(await count(a)).toBe(0);
  });

  test("more than 1000 errands, or none, is a 400", async () => {
    const a = app();
    const many = Array.from({ length: 1001 }, (_, i) => ({ name: `b${i}`, type: "t" }));
    expect((await a.call("POST", "/v1/errands/batch", { errands: many })).status).toBe(400);
    expect((await a.call("POST", "/v1/errands/batch", { errands: [] })).status).toBe(400);
    expect(await count(a)).toBe(0);
  });
});

describe("complete and claim next", () => {
  test("?next=true completes and answers the next errand of the type, already claimed", async () => {
    const a = app();
    await a.call("POST", "/v1/errands/batch", {
      errands: [
        { name: "first", type: "t" },
        { name: "second", type: "t" },
        { name: "other", type: "u" },
      ],
    });
    const first = (await a.call("POST", "/v1/errands/process/t")).body.results;
    const answer = await a.call("PUT", `/v1/errand/${first.id}/completed?next=true`, {
      results: { ok: 1 },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.results).toMatchObject({
      id: first.id,
      status: "completed",
      results: { ok: 1 },
    });
    expect(answer.body.next).toMatchObject({ name: "second", status: "active", attempts: 1 });

    const last = await a.call("PUT", `/v1/errand/${answer.body.next.id}/completed?next=true`);
    expect(last.body.results.status).toBe("completed");
    expect(last.body.next).toBeNull();
  });

  test("without next the answer is v1's, with no next field", async () => {
    const a = app();
    await a.call("POST", "/v1/errands/", { name: "n", type: "t" });
    const e = (await a.call("POST", "/v1/errands/process/t")).body.results;
    const answer = await a.call("PUT", `/v1/errand/${e.id}/completed?next=false`);
    expect(Object.keys(answer.body).sort()).toEqual(["results", "status"]);
  });
});

describe("concurrency", () => {
  test("64 concurrent workers over 2,000 errands claim each exactly once and complete it once", async () => {
    const a = app();
    for (let i = 0; i < 2000; i += 1000) {
      const errands = Array.from({ length: 1000 }, (_, j) => ({ name: `e${i + j}`, type: "work" }));
      expect((await a.call("POST", "/v1/errands/batch", { errands })).status).toBe(200);
    }
    const claimed: string[] = [];
    const completed: string[] = [];
    const worker = async () => {
      for (;;) {
        const got = await a.call("POST", "/v1/errands/process/work");
        if (got.status === 404) return;
        expect(got.status).toBe(200);
        claimed.push(got.body.results.id);
        const done = await a.call("PUT", `/v1/errand/${got.body.results.id}/completed`);
        expect(done.status).toBe(200);
        completed.push(done.body.results.id);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    expect(claimed.length).toBe(2000);
    expect(new Set(claimed).size).toBe(2000);
    expect(new Set(completed).size).toBe(2000);
    const rows = new Map<string, { status: string; attempts: number; n: number }>();
    for (const { status, attempts } of await storedErrands(a)) {
      const row = rows.get(`${status} ${attempts}`) ?? { status, attempts, n: 0 };
      row.n++;
      rows.set(`${status} ${attempts}`, row);
    }
    expect([...rows.values()]).toEqual([{ status: "completed", attempts: 1, n: 2000 }]);
  });
});
