// The driver contract: one suite that every storage engine passes, through the Driver
// interface and the records alone (riverdrivertest's shape). An engine's test file calls
// driverContract with a way to open it on a fresh, empty store.

import { afterEach, describe, expect, test } from "bun:test";
import { StorageUnavailable } from "../../src/errors.ts";
import { newErrand } from "../../src/lifecycle/create.ts";
import { type Driver, deleteInBatches, type Reads, type WriteTx } from "../../src/store/driver.ts";
import type {
  ErrandRecord,
  EventRecord,
  LogEntry,
  PipelineProgress,
  PipelineRecord,
  ScheduleRecord,
  Status,
} from "../../src/store/records.ts";

/** A driver on a store of its own, and how to close it and drop that store. */
export interface OpenedDriver {
  driver: Driver;
  /** Closes the driver (which a test may have closed already) and drops its store. */
  close(): Promise<void>;
}

/** Ids as the server hands them out, UUIDv7 text: the order of n is the order of the ids. */
const hex = (n: number) => n.toString(16).padStart(12, "0");
const errandId = (n: number) => `01900000-0000-7000-8000-${hex(n)}`;
const pipelineId = (n: number) => `01910000-0000-7000-8000-${hex(n)}`;

/** A moment to count from (ms since the epoch), as the clock would give it. */
const T0 = 1_700_000_000_000;

/** Errand n, created at T0 + n, inactive, of type "t", with these fields changed. */
function errand(n: number, fields: Partial<ErrandRecord> = {}): ErrandRecord {
  const base = newErrand({ name: `e${n}`, type: "t" }, { id: errandId(n), now: T0 + n });
  const priority = fields.priority ?? 0;
  return { ...base, options: priority === 0 ? {} : { priority }, ...fields };
}

/** Errand n as a claim leaves it: active at its first attempt, started at T0 + 1000 + n. */
function running(n: number, fields: Partial<ErrandRecord> = {}): ErrandRecord {
  return errand(n, { status: "active", attempts: 1, started: T0 + 1000 + n, ...fields });
}

function pipeline(n: number, fields: Partial<PipelineRecord> = {}): PipelineRecord {
  return {
    id: pipelineId(n),
    name: `p${n}`,
    deleteOnCompleted: false,
    status: "inactive",
    started: T0 + n,
    ended: null,
    finished: null,
    ...fields,
  };
}

/** Schedule `name`, due at T0 + `due` (null: paused), creating errands of type "t". */
function schedule(
  name: string,
  due: number | null,
  fields: Partial<ScheduleRecord> = {},
): ScheduleRecord {
  return {
    name,
    spec: { every: 60_000, errand: { name: `from ${name}`, type: "t" }, overlap: "allow" },
    paused: due === null,
    nextRunAt: due === null ? null : T0 + due,
    lastRunAt: null,
    lastErrandId: null,
    created: T0,
    updated: T0,
    ...fields,
  };
}

async function saveSchedules(driver: Driver, ...schedules: ScheduleRecord[]): Promise<void> {
  await driver.write(async (tx) => {
    for (const s of schedules) await tx.saveSchedule(s);
  });
}

const names = (schedules: ScheduleRecord[]) => schedules.map((s) => s.name);

/** Carries what a write found out of it, through the rollback that undoes its probing. */
class Kept extends Error {
  constructor(readonly ticks: string[]) {
    super("kept");
  }
}

const line = (message: string, timestamp = T0): LogEntry => ({
  severity: "INFO",
  message,
  timestamp,
});

async function insert(driver: Driver, ...records: ErrandRecord[]): Promise<void> {
  await driver.write(async (tx) => {
    for (const record of records) await tx.insertErrand(record);
  });
}

async function save(driver: Driver, ...records: ErrandRecord[]): Promise<void> {
  await driver.write(async (tx) => {
    for (const record of records) await tx.saveErrand(record);
  });
}

/** When the claims of these tests start, unless one says. */
const CLAIMED_AT = T0 + 5000;

/** Makes an errand a claim read active, as the service does. */
const activate = (tx: WriteTx, next: ErrandRecord, now = CLAIMED_AT) =>
  tx.saveErrand({ ...next, status: "active", attempts: next.attempts + 1, started: now });

/** Claims the next errand of a type as the service does: the errand made active, its id. */
async function claimIn(tx: WriteTx, type: string, now = CLAIMED_AT): Promise<string | null> {
  const next = await tx.nextClaimable(type, now);
  if (next === null) return null;
  await activate(tx, next, now);
  return next.id;
}

const claim = (driver: Driver, type = "t", now = CLAIMED_AT) =>
  driver.write((tx) => claimIn(tx, type, now));

/** Claims up to `limit` errands of a type in one write, as a batch claim does: their ids. */
const claimBatch = (driver: Driver, limit: number, type = "t", now = CLAIMED_AT) =>
  driver.write(async (tx) => {
    const taken = await tx.nextClaimables(type, limit, now);
    for (const next of taken) await activate(tx, next, now);
    return ids(taken);
  });

/** Claims every errand of a type there is, one write each: the ids in the order taken. */
async function claimAll(driver: Driver, type = "t"): Promise<string[]> {
  const taken: string[] = [];
  for (let id = await claim(driver, type); id !== null; id = await claim(driver, type)) {
    taken.push(id);
  }
  return taken;
}

/** The counts by type and status as {"type/status": n}; a row of 0 would show as such. */
/**
 * The log once it holds at least `n` events (or after 5 s, as it is): an engine may place
 * committed events in the log a moment after their commit.
 */
async function logged(driver: Driver, n: number): Promise<EventRecord[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const events = await driver.reads.eventsAfter(0, 1000);
    if (events.length >= n || Date.now() > deadline) return events;
    await Bun.sleep(5);
  }
}

const eventIds = (events: EventRecord[]) => events.map((e) => e.id);

async function counts(reads: Reads): Promise<Record<string, number>> {
  const rows = await reads.countsByTypeAndStatus();
  return Object.fromEntries(rows.map((row) => [`${row.type}/${row.status}`, row.count]));
}

const byType = <R extends { type: string }>(rows: R[]) =>
  [...rows].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));

const sorted = (ids: string[]) => [...ids].sort();

const ids = <I>(records: Array<{ id: I }>) => records.map((r) => r.id);

export function driverContract(name: string, open: () => Promise<OpenedDriver>): void {
  describe(`driver contract: ${name}`, () => {
    const opened: OpenedDriver[] = [];
    afterEach(async () => {
      for (const o of opened.splice(0)) await o.close();
    });

    /** A driver on a fresh, empty store, closed after the test. */
    async function fresh(): Promise<Driver> {
      const o = await open();
      opened.push(o);
      return o.driver;
    }

    describe("writes", () => {
      test("a write's changes are visible to reads only after it settles", async () => {
        const driver = await fresh();
        const e = errand(1);
        const seenInside = await driver.write(async (tx) => {
          await tx.insertErrand(e);
          await tx.appendLog(e.id, line("hello"));
          await tx.appendEvent("created", T0, "{}");
          await tx.setTypeControl({ type: "t", paused: true, concurrency: null, rateLimit: null });
          // Reads outside the transaction, while it is open: they never wait on a write.
          const r = driver.reads;
          return {
            errand: await r.errand(e.id),
            logs: await r.logs(e.id),
            page: await r.errandPage({}, "", 10, "oldest"),
            events: await r.eventsAfter(0, 10),
            counts: await counts(r),
            controls: await r.typeControls(),
          };
        });
        expect(seenInside).toEqual({
          errand: null,
          logs: [],
          page: [],
          events: [],
          counts: {},
          controls: [],
        });
        const r = driver.reads;
        expect(await r.errand(e.id)).toEqual(e);
        expect(await r.logs(e.id)).toEqual([line("hello")]);
        expect(ids(await r.errandPage({}, "", 10, "oldest"))).toEqual([e.id]);
        expect((await logged(driver, 1)).map((x) => x.event)).toEqual(["created"]);
        expect(await counts(r)).toEqual({ "t/inactive": 1 });
        expect(await r.typeControls()).toEqual([
          { type: "t", paused: true, concurrency: null, rateLimit: null },
        ]);
      });

      test("reads inside a write see its own changes", async () => {
        const driver = await fresh();
        const p = pipeline(1);
        const a = errand(1, { pipeline: p.id, status: "completed", results: '{"n":1}' });
        const b = errand(2, { pipeline: p.id, status: "blocked" });
        const c = errand(3, { type: "u" });
        const seen = await driver.write(async (tx) => {
          await tx.insertPipeline(p);
          await tx.insertErrand(a);
          await tx.insertErrand(b);
          await tx.insertErrand(c);
          await tx.insertDependencies(p.id, [[b.id, a.id]]);
          await tx.appendLog(c.id, line("one"));
          await tx.setTypeControl({ type: "u", paused: false, concurrency: 4, rateLimit: null });
          await tx.rememberKey("k", "req", "res", T0);
          return {
            errand: await tx.errand(c.id),
            locked: await tx.lockErrand(c.id),
            logs: await tx.logs(c.id),
            logsOf: (await tx.logsOf([c.id])).get(c.id),
            page: ids(await tx.errandPage({}, "", 10, "oldest")),
            byType: ids(await tx.errandPage({ type: "u" }, "", 10, "oldest")),
            pipeline: await tx.pipeline(p.id),
            pipelines: ids(await tx.pipelinePage(undefined, "", 10)),
            pipelineErrands: ids(await tx.pipelineErrands(p.id)),
            dependencies: await tx.dependencies(p.id),
            dependencyResults: await tx.dependencyResults(b.id),
            counts: await counts(tx),
            controls: await tx.typeControls(),
            control: await tx.typeControl("u"),
            oldestWaiting: await tx.oldestWaiting("u"),
            key: await tx.idempotencyKey("k", T0),
          };
        });
        expect(seen).toEqual({
          errand: c,
          locked: c,
          logs: [line("one")],
          logsOf: [line("one")],
          page: [a.id, b.id, c.id],
          byType: [c.id],
          pipeline: p,
          pipelines: [p.id],
          pipelineErrands: [a.id, b.id],
          dependencies: [{ target: "e2", dependsOn: "e1" }],
          dependencyResults: [{ name: "e1", results: '{"n":1}' }],
          counts: { "t/completed": 1, "t/blocked": 1, "u/inactive": 1 },
          controls: [{ type: "u", paused: false, concurrency: 4, rateLimit: null }],
          control: { type: "u", paused: false, concurrency: 4, rateLimit: null },
          oldestWaiting: c.created,
          key: { request: "req", response: "res" },
        });
      });

      test("a write whose function throws leaves nothing and rejects with its error", async () => {
        const driver = await fresh();
        const x = errand(1);
        await driver.write(async (tx) => {
          await tx.insertErrand(x);
          await tx.appendLog(x.id, line("kept"));
          await tx.setTypeControl({ type: "t", paused: false, concurrency: 3, rateLimit: null });
          await tx.appendEvent("created", T0, "{}");
        });
        const eventId = (await logged(driver, 1))[0]?.id;
        const before = {
          counts: await counts(driver.reads),
          controls: await driver.reads.typeControls(),
        };
        const boom = new Error("boom");
        const y = errand(2, { type: "u" });
        const p = pipeline(1);
        const z = errand(3, { pipeline: p.id, status: "blocked" });
        const failed = driver.write(async (tx) => {
          await tx.insertErrand(y);
          await tx.appendLog(y.id, line("lost"));
          const locked = await tx.lockErrand(x.id);
          if (locked) await tx.saveErrand({ ...locked, status: "active", attempts: 1 });
          await tx.appendLog(x.id, line("lost"));
          await tx.extendHeartbeat(x.id, T0 + 99);
          await tx.appendEvent("updated", T0 + 1, "{}");
          await tx.rememberKey("k", "req", "res", T0);
          await tx.insertPipeline(p);
          await tx.insertErrand(z);
          await tx.insertDependencies(p.id, [[z.id, y.id]]);
          await tx.setTypeControl({ type: "t", paused: true, concurrency: null, rateLimit: null });
          await tx.setTypeControl({ type: "u", paused: true, concurrency: 1, rateLimit: null });
          throw boom;
        });
        await expect(failed).rejects.toBe(boom);
        const r = driver.reads;
        expect(await r.errand(x.id)).toEqual(x);
        expect(await r.logs(x.id)).toEqual([line("kept")]);
        expect(await r.errand(y.id)).toBeNull();
        expect(await r.errand(z.id)).toBeNull();
        expect(await r.logs(y.id)).toEqual([]);
        // A later write's event reaches the log; the failed write's never does.
        await driver.write((tx) => tx.appendEvent("created", T0 + 2, '"later"'));
        const log = await logged(driver, 2);
        expect(log.map((e) => e.payload)).toEqual(["{}", '"later"']);
        expect(log[0]?.id).toBe(eventId as number);
        expect(await r.pipeline(p.id)).toBeNull();
        expect(await r.pipelinePage(undefined, "", 10)).toEqual([]);
        expect(await r.dependencies(p.id)).toEqual([]);
        expect(await r.typeControls()).toEqual(before.controls);
        expect(await counts(r)).toEqual(before.counts);
        expect(await driver.write((tx) => tx.idempotencyKey("k", 0))).toBeNull();
      });

      test("a write that fails leaves the writes that ran beside it", async () => {
        const driver = await fresh();
        const boom = new Error("boom");
        const results = await Promise.allSettled([
          insert(driver, errand(1)),
          driver.write(async (tx) => {
            await tx.insertErrand(errand(2));
            await tx.appendEvent("created", T0, "{}");
            throw boom;
          }),
          driver.write(async (tx) => {
            await tx.insertErrand(errand(3, { type: "u" }));
            await tx.appendEvent("created", T0, '"kept"');
          }),
        ]);
        expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
        expect(ids(await driver.reads.errandPage({}, "", 10, "oldest"))).toEqual([
          errandId(1),
          errandId(3),
        ]);
        expect((await logged(driver, 1)).map((e) => e.payload)).toEqual(['"kept"']);
        expect(await counts(driver.reads)).toEqual({ "t/inactive": 1, "u/inactive": 1 });
      });

      test("afterCommit callbacks run after the commit, in order, and never for a failed write", async () => {
        const driver = await fresh();
        const e = errand(1);
        const ran: string[] = [];
        let readAfter: Promise<ErrandRecord | null> | null = null;
        const ranInside = await driver.write(async (tx) => {
          await tx.insertErrand(e);
          tx.afterCommit(() => {
            ran.push("first");
            readAfter = driver.reads.errand(e.id);
          });
          tx.afterCommit(() => ran.push("second"));
          return [...ran];
        });
        expect(ranInside).toEqual([]);
        expect(ran).toEqual(["first", "second"]);
        expect(await (readAfter as Promise<ErrandRecord | null> | null)).toEqual(e);

        const boom = new Error("boom");
        const failed = driver.write(async (tx) => {
          tx.afterCommit(() => ran.push("failed"));
          await tx.insertErrand(errand(2));
          throw boom;
        });
        await expect(failed).rejects.toBe(boom);
        // A write after it commits: the failed write's callbacks have had every chance to run.
        await insert(driver, errand(3));
        expect(ran).toEqual(["first", "second"]);
      });

      test("stage answers the result, and durable resolves once the write is durable and its afterCommit work done", async () => {
        const driver = await fresh();
        const e = errand(1);
        let committed = false;
        const staged = await driver.stage(async (tx) => {
          await tx.insertErrand(e);
          tx.afterCommit(() => {
            committed = true;
          });
          return "taken";
        });
        expect(staged.result).toBe("taken");
        // SQLite answers before its fsync (test/durability.test.ts holds one back to show it);
        // PostgreSQL once its commit returned. Either way, durable settles after the commit.
        await staged.durable;
        expect(committed).toBe(true);
        expect(await driver.reads.errand(e.id)).toEqual(e);
      });

      test("stage rejects with the error of a function that throws, keeping nothing", async () => {
        const driver = await fresh();
        const boom = new Error("boom");
        const staged = driver.stage(async (tx) => {
          await tx.insertErrand(errand(1));
          throw boom;
        });
        await expect(staged).rejects.toBe(boom);
        await insert(driver, errand(2));
        expect(ids(await driver.reads.errandPage({}, "", 10, "oldest"))).toEqual([errandId(2)]);
      });

      test("concurrent writes that lock the same errand never lose an update", async () => {
        const driver = await fresh();
        await insert(driver, running(1));
        await Promise.all(
          Array.from({ length: 10 }, () =>
            driver.write(async (tx) => {
              const e = await tx.lockErrand(errandId(1));
              if (e) await tx.saveErrand({ ...e, progress: e.progress + 1 });
            }),
          ),
        );
        expect((await driver.reads.errand(errandId(1)))?.progress).toBe(10);
      });
    });

    describe("errands", () => {
      test("insertErrand keeps every field exactly, as lockErrand, errand and errandPage read it", async () => {
        const driver = await fresh();
        const p = pipeline(1);
        const full: ErrandRecord = {
          id: errandId(1),
          name: "Process file 7 — é 😀",
          type: "extract",
          status: "active",
          priority: -7,
          options: {
            ttl: 2.5,
            retries: 3,
            priority: -7,
            deleteOnCompleted: true,
            heartbeat: 30,
            runAt: T0 + 10,
            backoff: { type: "exponential", delay: 250 },
          },
          data: '{"z":1,"a":{"b":[1,2.5,null,"ü😀"]},"": true}',
          results: '{"rows":42,"list":[]}',
          created: T0 + 1,
          progress: 37.5,
          attempts: 3,
          started: T0 + 2,
          failed: T0 + 3,
          completed: T0 + 4,
          finished: T0 + 5,
          ttlDeadline: Number.MAX_SAFE_INTEGER,
          heartbeatDeadline: T0 + 6,
          runAt: T0 + 7,
          pipeline: p.id,
        };
        const bare: ErrandRecord = {
          id: errandId(2),
          name: "",
          type: "t",
          status: "blocked",
          priority: 0,
          options: {},
          data: null,
          results: null,
          created: T0,
          progress: 0,
          attempts: 0,
          started: null,
          failed: null,
          completed: null,
          finished: null,
          ttlDeadline: null,
          heartbeatDeadline: null,
          runAt: null,
          pipeline: null,
        };
        await driver.write(async (tx) => {
          await tx.insertPipeline(p);
          await tx.insertErrand(full);
          await tx.insertErrand(bare);
        });
        for (const e of [full, bare]) {
          expect(await driver.reads.errand(e.id)).toStrictEqual(e);
          expect(await driver.write((tx) => tx.lockErrand(e.id))).toStrictEqual(e);
          expect(await driver.write((tx) => tx.errand(e.id))).toStrictEqual(e);
        }
        expect(await driver.reads.errandPage({}, "", 10, "oldest")).toStrictEqual([full, bare]);
        expect(await driver.reads.pipelineErrands(p.id)).toStrictEqual([full]);
        expect(await driver.reads.errand(errandId(3))).toBeNull();
        expect(await driver.write((tx) => tx.lockErrand(errandId(3)))).toBeNull();
      });

      test("saveErrand writes back every field a rule changes", async () => {
        const driver = await fresh();
        const e = errand(1, { options: { ttl: 1, heartbeat: 10 }, data: '{"x":1}' });
        await insert(driver, e);
        const changed: ErrandRecord = {
          ...e,
          status: "completed",
          progress: 99.25,
          results: '{"b":2,"a":"é"}',
          attempts: 4,
          started: T0 + 10,
          failed: T0 + 11,
          completed: T0 + 12,
          finished: T0 + 13,
          ttlDeadline: T0 + 14,
          heartbeatDeadline: T0 + 15,
          runAt: T0 + 16,
        };
        await driver.write(async (tx) => {
          const locked = await tx.lockErrand(e.id);
          expect(locked).toStrictEqual(e);
          await tx.saveErrand(changed);
        });
        expect(await driver.reads.errand(e.id)).toStrictEqual(changed);
        const cleared: ErrandRecord = {
          ...changed,
          status: "inactive",
          progress: 0,
          results: null,
          started: null,
          failed: null,
          completed: null,
          finished: null,
          ttlDeadline: null,
          heartbeatDeadline: null,
          runAt: null,
        };
        await save(driver, cleared);
        expect(await driver.reads.errand(e.id)).toStrictEqual(cleared);
      });

      test("removeErrand deletes the errand and its logs, and no other's", async () => {
        const driver = await fresh();
        const [a, b] = [errand(1), errand(2)];
        await driver.write(async (tx) => {
          await tx.insertErrand(a);
          await tx.insertErrand(b);
          await tx.appendLog(a.id, line("a1"));
          await tx.appendLog(a.id, line("a2"));
          await tx.appendLog(b.id, line("b1"));
        });
        await driver.write(async (tx) => {
          const locked = await tx.lockErrand(a.id);
          if (locked) await tx.removeErrand(locked);
          expect(await tx.errand(a.id)).toBeNull();
        });
        expect(await driver.reads.errand(a.id)).toBeNull();
        expect(await driver.reads.logs(a.id)).toEqual([]);
        expect(await driver.reads.errand(b.id)).toEqual(b);
        expect(await driver.reads.logs(b.id)).toEqual([line("b1")]);
        // An errand inserted and removed within one write leaves nothing either.
        await driver.write(async (tx) => {
          const c = errand(3);
          await tx.insertErrand(c);
          await tx.appendLog(c.id, line("c1"));
          await tx.removeErrand(c);
        });
        expect(await driver.reads.errand(errandId(3))).toBeNull();
        expect(await driver.reads.logs(errandId(3))).toEqual([]);
        expect(await counts(driver.reads)).toEqual({ "t/inactive": 1 });
      });

      test("extendHeartbeat changes only the heartbeat deadline", async () => {
        const driver = await fresh();
        const e = running(1, {
          options: { ttl: 5, heartbeat: 10 },
          progress: 12.5,
          ttlDeadline: T0 + 300_000,
          heartbeatDeadline: T0 + 10_000,
        });
        const other = running(2, { heartbeatDeadline: T0 + 10_000 });
        await driver.write(async (tx) => {
          await tx.insertErrand(e);
          await tx.insertErrand(other);
          await tx.appendLog(e.id, line("Started!"));
        });
        await driver.write((tx) => tx.extendHeartbeat(e.id, T0 + 20_000));
        expect(await driver.reads.errand(e.id)).toStrictEqual({
          ...e,
          heartbeatDeadline: T0 + 20_000,
        });
        expect(await driver.reads.logs(e.id)).toEqual([line("Started!")]);
        expect(await driver.reads.errand(other.id)).toStrictEqual(other);
      });
    });

    describe("claims", () => {
      test("nextClaimable takes only inactive errands of the type asked", async () => {
        const driver = await fresh();
        const e = errand(2, { type: "wanted", options: { ttl: 1 }, data: '{"f":1}' });
        await insert(driver, errand(1, { type: "other" }), e, errand(3, { type: "wanted2" }));
        expect(await driver.write((tx) => tx.nextClaimable("wanted", CLAIMED_AT))).toStrictEqual(e);
        expect(await driver.write((tx) => tx.nextClaimable("missing", CLAIMED_AT))).toBeNull();
        expect(await claimAll(driver, "wanted")).toEqual([e.id]);
        expect(await claimAll(driver, "other")).toEqual([errandId(1)]);
      });

      test("nextClaimable takes the highest priority first, then the oldest, then the lowest id", async () => {
        const driver = await fresh();
        // Inserted out of order: what comes first is the store's order, not insertion order.
        await insert(
          driver,
          errand(1, { priority: 0, created: T0 + 100 }),
          errand(2, { priority: -5, created: T0 }),
          errand(3, { priority: 5, created: T0 + 300 }),
          errand(7, { priority: 5, created: T0 + 200 }),
          errand(6, { priority: 5, created: T0 + 200 }),
          errand(4, { priority: 0, created: T0 + 50 }),
          errand(5, { priority: 10, created: T0 + 900 }),
        );
        expect(await claimAll(driver)).toEqual([5, 6, 7, 3, 4, 1, 2].map(errandId));
      });

      test("nextClaimable never returns a scheduled, blocked, active, failed or completed errand", async () => {
        const driver = await fresh();
        const statuses: Status[] = ["scheduled", "blocked", "active", "failed", "completed"];
        await insert(
          driver,
          ...statuses.map((status, i) =>
            errand(i + 1, { status, priority: 100, created: T0 - 1000 }),
          ),
        );
        expect(await driver.write((tx) => tx.nextClaimable("t", CLAIMED_AT))).toBeNull();
        await insert(driver, errand(10, { priority: -100 }));
        expect(await claimAll(driver)).toEqual([errandId(10)]);
      });

      test("nextClaimable answers none while the type is paused, and again once resumed", async () => {
        const driver = await fresh();
        await insert(driver, errand(1), errand(2, { type: "u" }));
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: true, concurrency: null, rateLimit: null }),
        );
        expect(await driver.write((tx) => tx.nextClaimable("t", CLAIMED_AT))).toBeNull();
        expect(await claim(driver, "u")).toBe(errandId(2));
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: null, rateLimit: null }),
        );
        expect(await claim(driver, "t")).toBe(errandId(1));
      });

      test("nextClaimable answers none once `concurrency` errands of the type are active, and one when a slot frees", async () => {
        const driver = await fresh();
        await insert(
          driver,
          ...[1, 2, 3, 4].map((n) => errand(n)),
          running(5, { type: "u" }),
          errand(6, { type: "u" }),
        );
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: 2, rateLimit: null }),
        );
        expect(await claim(driver)).toBe(errandId(1));
        expect(await claim(driver)).toBe(errandId(2));
        expect(await claim(driver)).toBeNull();
        // Another type's active errands do not count against this one's limit.
        expect(await claim(driver, "u")).toBe(errandId(6));
        // One of the two finishes: a slot is free.
        const first = await driver.reads.errand(errandId(1));
        if (first) await save(driver, { ...first, status: "completed", finished: T0 + 6000 });
        expect(await claim(driver)).toBe(errandId(3));
        expect(await claim(driver)).toBeNull();
        // Raising the limit frees slots; lifting it frees them all.
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: 3, rateLimit: null }),
        );
        expect(await claim(driver)).toBe(errandId(4));
        await insert(driver, errand(7), errand(8));
        expect(await claim(driver)).toBeNull();
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: null, rateLimit: null }),
        );
        expect(await claimAll(driver)).toEqual([errandId(7), errandId(8)]);
      });

      test("errands a write made active count against the concurrency limit within that write", async () => {
        const driver = await fresh();
        await insert(driver, errand(1), errand(2), errand(3));
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: 2, rateLimit: null }),
        );
        const taken = await driver.write(async (tx) => [
          await claimIn(tx, "t"),
          await claimIn(tx, "t"),
          await claimIn(tx, "t"),
        ]);
        expect(taken).toEqual([errandId(1), errandId(2), null]);
      });

      test("concurrent claims never take the same errand twice nor exceed the concurrency limit", async () => {
        const driver = await fresh();
        await insert(driver, ...[1, 2, 3].map((n) => errand(n)));
        await insert(driver, ...[11, 12, 13, 14].map((n) => errand(n, { type: "limited" })));
        await driver.write((tx) =>
          tx.setTypeControl({ type: "limited", paused: false, concurrency: 2, rateLimit: null }),
        );
        const [free, limited] = await Promise.all([
          Promise.all(Array.from({ length: 5 }, () => claim(driver, "t"))),
          Promise.all(Array.from({ length: 5 }, () => claim(driver, "limited"))),
        ]);
        const freeTaken = free.filter((id): id is string => id !== null);
        expect(sorted(freeTaken)).toEqual([1, 2, 3].map(errandId));
        expect(limited.filter((id) => id !== null)).toHaveLength(2);
        expect(new Set(limited.filter((id) => id !== null)).size).toBe(2);
        expect(await counts(driver.reads)).toEqual({
          "t/active": 3,
          "limited/active": 2,
          "limited/inactive": 2,
        });
      });
    });

    describe("batch claims and locks", () => {
      test("nextClaimables takes up to `limit` inactive errands of the type, in claim order", async () => {
        const driver = await fresh();
        await insert(
          driver,
          errand(1, { priority: 0, created: T0 + 100 }),
          errand(2, { priority: -5, created: T0 }),
          errand(3, { priority: 5, created: T0 + 300 }),
          errand(4, { priority: 0, created: T0 + 50 }),
          errand(5, { priority: 10, created: T0 + 900 }),
          errand(6, { type: "other", priority: 100 }),
          errand(7, { status: "scheduled", priority: 100 }),
          errand(8, { status: "blocked", priority: 100 }),
          running(9, { priority: 100 }),
        );
        const first = await driver.write((tx) => tx.nextClaimables("t", 3, CLAIMED_AT));
        expect(ids(first)).toEqual([5, 3, 4].map(errandId));
        expect(first[0]).toStrictEqual(errand(5, { priority: 10, created: T0 + 900 }));
        expect(await claimBatch(driver, 2)).toEqual([5, 3].map(errandId));
        expect(await claimBatch(driver, 100)).toEqual([4, 1, 2].map(errandId));
        expect(await claimBatch(driver, 100)).toEqual([]);
        expect(await claimBatch(driver, 100, "other")).toEqual([errandId(6)]);
        expect(await claimBatch(driver, 5, "missing")).toEqual([]);
      });

      test("nextClaimables answers none while the type is paused, and no more than its free slots", async () => {
        const driver = await fresh();
        await insert(driver, running(1), ...[2, 3, 4, 5, 6, 7].map((n) => errand(n)));
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: true, concurrency: 3, rateLimit: null }),
        );
        expect(await claimBatch(driver, 10)).toEqual([]);
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: 3, rateLimit: null }),
        );
        // One of three slots is taken: two are free.
        expect(await claimBatch(driver, 10)).toEqual([2, 3].map(errandId));
        expect(await claimBatch(driver, 10)).toEqual([]);
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: 5, rateLimit: null }),
        );
        expect(await claimBatch(driver, 1)).toEqual([errandId(4)]);
        // Errands this write made active count against the limit within it.
        const inOneWrite = await driver.write(async (tx) => {
          const taken = [];
          for (let round = 0; round < 3; round++) {
            const batch = await tx.nextClaimables("t", 10, CLAIMED_AT);
            for (const next of batch) await activate(tx, next);
            taken.push(ids(batch));
          }
          return taken;
        });
        expect(inOneWrite).toEqual([[errandId(5)], [], []]);
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: null, rateLimit: null }),
        );
        expect(await claimBatch(driver, 10)).toEqual([6, 7].map(errandId));
      });

      test("concurrent batch claims never take the same errand twice nor exceed the concurrency limit", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 20 }, (_, i) => errand(i + 1)));
        await insert(driver, ...[31, 32, 33, 34, 35].map((n) => errand(n, { type: "limited" })));
        await driver.write((tx) =>
          tx.setTypeControl({ type: "limited", paused: false, concurrency: 3, rateLimit: null }),
        );
        const [free, limited] = await Promise.all([
          Promise.all(Array.from({ length: 5 }, () => claimBatch(driver, 6))),
          Promise.all(Array.from({ length: 5 }, () => claimBatch(driver, 2, "limited"))),
        ]);
        const freeTaken = free.flat();
        expect(sorted(freeTaken)).toEqual(Array.from({ length: 20 }, (_, i) => errandId(i + 1)));
        expect(limited.flat()).toHaveLength(3);
        expect(new Set(limited.flat()).size).toBe(3);
        expect(await counts(driver.reads)).toEqual({
          "t/active": 20,
          "limited/active": 3,
          "limited/inactive": 2,
        });
      });

      test("lockErrands answers the errands of the ids that exist, each once, in id order", async () => {
        const driver = await fresh();
        const records = [1, 2, 3, 4].map((n) => errand(n, { type: n % 2 === 0 ? "even" : "odd" }));
        await insert(driver, ...records);
        const wanted = [4, 99, 1, 3, 1].map(errandId);
        const locked = await driver.write((tx) => tx.lockErrands(wanted));
        expect(locked).toStrictEqual(records.filter((r) => r.id !== errandId(2)));
        expect(await driver.write((tx) => tx.lockErrands([]))).toEqual([]);
      });

      test("errands read by lockErrands are written back by saveErrand and removeErrand, counts kept", async () => {
        const driver = await fresh();
        await insert(driver, errand(1), errand(2), errand(3, { type: "u" }));
        await driver.write(async (tx) => {
          const [one, two, three] = await tx.lockErrands([1, 2, 3].map(errandId));
          if (!one || !two || !three) throw new Error("an errand was not locked");
          await tx.saveErrand({ ...one, status: "completed", finished: T0 + 10 });
          await tx.removeErrand(two);
          await tx.saveErrand({ ...three, status: "failed", finished: T0 + 10 });
        });
        expect((await driver.reads.errand(errandId(1)))?.status).toBe("completed");
        expect(await driver.reads.errand(errandId(2))).toBeNull();
        expect(await counts(driver.reads)).toEqual({ "t/completed": 1, "u/failed": 1 });
      });
    });

    describe("rate limits", () => {
      /** Sets type `t`'s rate limit (and its concurrency limit, none unless given). */
      const limit = (
        driver: Driver,
        max: number,
        perMs: number,
        concurrency: number | null = null,
      ) =>
        driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency, rateLimit: { max, perMs } }),
        );
      const hold = (driver: Driver, now: number, type = "t") =>
        driver.write((tx) => tx.rateLimitHold(type, now));

      test("setTypeControl stores a rate limit; typeControl and typeControls read it; null clears it", async () => {
        const driver = await fresh();
        const limited = {
          type: "t",
          paused: false,
          concurrency: 2,
          rateLimit: { max: 10, perMs: 1000 },
        };
        await driver.write((tx) => tx.setTypeControl(limited));
        expect(await driver.write((tx) => tx.typeControl("t"))).toEqual(limited);
        expect(await driver.reads.typeControls()).toEqual([limited]);
        await driver.write((tx) => tx.setTypeControl({ ...limited, rateLimit: null }));
        expect(await driver.reads.typeControls()).toEqual([{ ...limited, rateLimit: null }]);
      });

      test("nextClaimable starts at most `max` claims in any window of `perMs`, more as it slides", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 10 }, (_, i) => errand(i + 1)));
        await limit(driver, 3, 1000);
        const at = (ms: number) => claim(driver, "t", T0 + ms);
        expect([await at(0), await at(100), await at(200)]).toEqual([1, 2, 3].map(errandId));
        expect(await at(300)).toBeNull();
        expect(await at(999)).toBeNull();
        // The claim of t = 0 leaves the window at 1000: one may start, then none until 1100.
        expect(await at(1000)).toBe(errandId(4));
        expect(await at(1050)).toBeNull();
        expect(await at(1100)).toBe(errandId(5));
        expect(await at(1200)).toBe(errandId(6));
        expect(await at(1300)).toBeNull();
        // Another type is not held back.
        await insert(driver, errand(20, { type: "u" }));
        expect(await claim(driver, "u", T0 + 1300)).toBe(errandId(20));
      });

      test("rateLimitHold tells when the next claim may start, and nothing while one may", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 5 }, (_, i) => errand(i + 1)));
        expect(await hold(driver, T0)).toBeNull();
        await limit(driver, 2, 1000);
        expect(await hold(driver, T0)).toBeNull();
        await claim(driver, "t", T0 + 100);
        expect(await hold(driver, T0 + 150)).toBeNull();
        await claim(driver, "t", T0 + 200);
        expect(await hold(driver, T0 + 250)).toEqual({ max: 2, perMs: 1000, until: T0 + 1100 });
        expect(await hold(driver, T0 + 1099)).toEqual({ max: 2, perMs: 1000, until: T0 + 1100 });
        expect(await hold(driver, T0 + 1100)).toBeNull();
        // A paused type is held back by its pause, not by its rate limit.
        await driver.write((tx) =>
          tx.setTypeControl({
            type: "t",
            paused: true,
            concurrency: null,
            rateLimit: { max: 2, perMs: 1000 },
          }),
        );
        expect(await hold(driver, T0 + 250)).toBeNull();
        expect(await hold(driver, T0 + 250, "other")).toBeNull();
      });

      test("nextClaimables takes no more than the rate limit lets start", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 12 }, (_, i) => errand(i + 1)));
        await limit(driver, 5, 1000);
        expect(await claimBatch(driver, 3, "t", T0)).toEqual([1, 2, 3].map(errandId));
        expect(await claimBatch(driver, 10, "t", T0 + 100)).toEqual([4, 5].map(errandId));
        expect(await claimBatch(driver, 10, "t", T0 + 500)).toEqual([]);
        expect(await hold(driver, T0 + 500)).toEqual({ max: 5, perMs: 1000, until: T0 + 1000 });
        // At 1000 the three of t = 0 leave the window; at 1100 the two of t = 100.
        expect(await claimBatch(driver, 10, "t", T0 + 1000)).toEqual([6, 7, 8].map(errandId));
        expect(await claimBatch(driver, 1, "t", T0 + 1050)).toEqual([]);
        expect(await claimBatch(driver, 10, "t", T0 + 1100)).toEqual([9, 10].map(errandId));
        // Fewer errands than the allowance: all of them, each counted.
        expect(await claimBatch(driver, 10, "t", T0 + 2000)).toEqual([11, 12].map(errandId));
        // Kept: the newest five (one started at 1000); the older ones no claim reads again.
        expect(await driver.reads.claimStartsSince("t", T0 + 1000)).toBe(4);
        expect(await driver.reads.claimStartsSince("t", T0 - 1)).toBe(5);
      });

      test("claims of one write count against the rate limit within it; a write rolled back counts none", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 4 }, (_, i) => errand(i + 1)));
        await limit(driver, 2, 1000);
        const taken = await driver.write(async (tx) => [
          await claimIn(tx, "t", T0),
          await claimIn(tx, "t", T0),
          await claimIn(tx, "t", T0),
        ]);
        expect(taken).toEqual([errandId(1), errandId(2), null]);
        const failing = driver.write(async (tx) => {
          await claimIn(tx, "t", T0 + 1000);
          throw new Error("rolled back");
        });
        expect(failing).rejects.toThrow("rolled back");
        await failing.catch(() => {});
        expect(await claimBatch(driver, 5, "t", T0 + 1000)).toEqual([3, 4].map(errandId));
      });

      test("with a concurrency limit too, the tighter bound holds", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 6 }, (_, i) => errand(i + 1)));
        await limit(driver, 4, 1000, 2);
        expect(await claimBatch(driver, 10, "t", T0)).toEqual([1, 2].map(errandId));
        // No slot free: held back by the concurrency limit, not by the rate limit.
        expect(await claimBatch(driver, 10, "t", T0)).toEqual([]);
        expect(await hold(driver, T0)).toBeNull();
        const first = await driver.reads.errand(errandId(1));
        const second = await driver.reads.errand(errandId(2));
        if (first && second) {
          await save(
            driver,
            { ...first, status: "completed", finished: T0 },
            { ...second, status: "completed", finished: T0 },
          );
        }
        // Two slots free, but only two more starts in the window.
        expect(await claimBatch(driver, 10, "t", T0 + 10)).toEqual([3, 4].map(errandId));
        const third = await driver.reads.errand(errandId(3));
        if (third) await save(driver, { ...third, status: "completed", finished: T0 });
        expect(await claimBatch(driver, 10, "t", T0 + 20)).toEqual([]);
        expect(await hold(driver, T0 + 20)).toEqual({ max: 4, perMs: 1000, until: T0 + 1000 });
      });

      test("a limit lowered holds until enough starts leave the window; raised, lets more start", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 10 }, (_, i) => errand(i + 1)));
        await limit(driver, 4, 1000);
        expect(await claimBatch(driver, 4, "t", T0)).toHaveLength(4);
        await limit(driver, 2, 1000);
        expect(await claimBatch(driver, 4, "t", T0 + 500)).toEqual([]);
        expect(await hold(driver, T0 + 500)).toEqual({ max: 2, perMs: 1000, until: T0 + 1000 });
        // Raised again within the window: the four starts still count.
        await limit(driver, 6, 1000);
        expect(await claimBatch(driver, 4, "t", T0 + 600)).toHaveLength(2);
        expect(await claimBatch(driver, 4, "t", T0 + 700)).toEqual([]);
      });

      test("clearing the rate limit forgets its starts", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 6 }, (_, i) => errand(i + 1)));
        await limit(driver, 2, 1000);
        expect(await claimBatch(driver, 5, "t", T0)).toHaveLength(2);
        expect(await driver.reads.claimStartsSince("t", T0 - 1)).toBe(2);
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: null, rateLimit: null }),
        );
        expect(await driver.reads.claimStartsSince("t", T0 - 1)).toBe(0);
        expect(await claimBatch(driver, 2, "t", T0 + 1)).toHaveLength(2);
        // Set again: the claims made without it are not counted.
        await limit(driver, 2, 1000);
        expect(await claimBatch(driver, 5, "t", T0 + 2)).toHaveLength(2);
      });

      test("claimStartsSince counts the starts after a moment, of one type", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 4 }, (_, i) => errand(i + 1)));
        await insert(driver, errand(10, { type: "u" }));
        await limit(driver, 10, 1000);
        await driver.write((tx) =>
          tx.setTypeControl({
            type: "u",
            paused: false,
            concurrency: null,
            rateLimit: { max: 10, perMs: 1000 },
          }),
        );
        await claim(driver, "t", T0);
        await claim(driver, "t", T0 + 100);
        await claimBatch(driver, 2, "t", T0 + 200);
        await claim(driver, "u", T0 + 200);
        expect(await driver.reads.claimStartsSince("t", T0 - 1)).toBe(4);
        expect(await driver.reads.claimStartsSince("t", T0)).toBe(3);
        expect(await driver.reads.claimStartsSince("t", T0 + 199)).toBe(2);
        expect(await driver.reads.claimStartsSince("t", T0 + 200)).toBe(0);
        expect(await driver.reads.claimStartsSince("u", T0 - 1)).toBe(1);
        expect(await driver.reads.claimStartsSince("missing", T0 - 1)).toBe(0);
      });

      test("concurrent claims never start more than `max` in a window", async () => {
        const driver = await fresh();
        await insert(driver, ...Array.from({ length: 30 }, (_, i) => errand(i + 1)));
        await limit(driver, 7, 1000);
        const [single, batches] = await Promise.all([
          Promise.all(Array.from({ length: 10 }, () => claim(driver, "t", T0))),
          Promise.all(Array.from({ length: 5 }, () => claimBatch(driver, 3, "t", T0))),
        ]);
        const taken = [...single.filter((id) => id !== null), ...batches.flat()];
        expect(taken).toHaveLength(7);
        expect(new Set(taken).size).toBe(7);
        expect(await counts(driver.reads)).toEqual({ "t/active": 7, "t/inactive": 23 });
      });
    });

    describe("logs", () => {
      test("appendLog keeps entries in the order appended; logs reads them oldest first", async () => {
        const driver = await fresh();
        const e = errand(1);
        const entries: LogEntry[] = [
          { severity: "INFO", message: "Started!", timestamp: T0 + 5 },
          { severity: "WARNING", message: "slow — é 😀", timestamp: T0 + 3 },
          { severity: "ERROR", message: "", timestamp: T0 + 3 },
        ];
        await driver.write(async (tx) => {
          await tx.insertErrand(e);
          for (const entry of entries.slice(0, 2)) await tx.appendLog(e.id, entry);
        });
        await driver.write(async (tx) => tx.appendLog(e.id, entries[2] as LogEntry));
        expect(await driver.reads.logs(e.id)).toEqual(entries);
        expect(await driver.reads.logs(errandId(9))).toEqual([]);
      });

      test("keptLogs answers the newest `max` entries and deletes the older ones", async () => {
        const driver = await fresh();
        const e = errand(1);
        const entries = [1, 2, 3, 4, 5].map((n) => line(`m${n}`, T0 + n));
        await driver.write(async (tx) => {
          await tx.insertErrand(e);
          for (const entry of entries) await tx.appendLog(e.id, entry);
        });
        expect(await driver.write((tx) => tx.keptLogs(e.id, 10))).toEqual(entries);
        expect(await driver.write((tx) => tx.keptLogs(e.id, 5))).toEqual(entries);
        expect(await driver.reads.logs(e.id)).toEqual(entries);
        expect(await driver.write((tx) => tx.keptLogs(e.id, 3))).toEqual(entries.slice(2));
        expect(await driver.reads.logs(e.id)).toEqual(entries.slice(2));
        // Appended and trimmed in one write, as the service does.
        const kept = await driver.write(async (tx) => {
          await tx.appendLog(e.id, line("m6", T0 + 6));
          return tx.keptLogs(e.id, 2);
        });
        expect(kept).toEqual([line("m5", T0 + 5), line("m6", T0 + 6)]);
        expect(await driver.reads.logs(e.id)).toEqual(kept);
      });

      test("logsOf reads the logs of many errands in one call, and nothing for an empty list", async () => {
        const driver = await fresh();
        const [a, b, c] = [errand(1), errand(2), errand(3)];
        await driver.write(async (tx) => {
          for (const e of [a, b, c]) await tx.insertErrand(e);
          await tx.appendLog(b.id, line("b1", T0 + 1));
          await tx.appendLog(a.id, line("a1", T0 + 2));
          await tx.appendLog(b.id, line("b2", T0 + 3));
          await tx.appendLog(a.id, line("a2", T0 + 4));
          await tx.appendLog(c.id, line("c1", T0 + 5));
        });
        const logs = await driver.reads.logsOf([b.id, a.id, errandId(9)]);
        expect(logs.get(a.id)).toEqual([line("a1", T0 + 2), line("a2", T0 + 4)]);
        expect(logs.get(b.id)).toEqual([line("b1", T0 + 1), line("b2", T0 + 3)]);
        expect(logs.get(errandId(9)) ?? []).toEqual([]);
        expect(logs.has(c.id)).toBe(false);
        expect((await driver.reads.logsOf([])).size).toBe(0);
      });
    });

    describe("lists", () => {
      test("errandPage lists errands in id order from `after`, at most `limit`", async () => {
        const driver = await fresh();
        // Inserted out of id order, created out of id order.
        await insert(
          driver,
          errand(3, { created: T0 }),
          errand(1, { created: T0 + 9 }),
          errand(5),
          errand(2),
          errand(4),
        );
        const page = (after: string, limit: number) =>
          driver.reads.errandPage({}, after, limit, "oldest").then(ids);
        expect(await page("", 10)).toEqual([1, 2, 3, 4, 5].map(errandId));
        expect(await page("", 2)).toEqual([1, 2].map(errandId));
        expect(await page(errandId(2), 2)).toEqual([3, 4].map(errandId));
        expect(await page(errandId(4), 2)).toEqual([errandId(5)]);
        expect(await page(errandId(5), 2)).toEqual([]);
        // `after` need not be an id stored.
        expect(await page(`${errandId(2)}0`, 10)).toEqual([3, 4, 5].map(errandId));
      });

      test("errandPage filters by status and by type", async () => {
        const driver = await fresh();
        await insert(
          driver,
          errand(1, { type: "a" }),
          running(2, { type: "b" }),
          errand(3, { type: "b" }),
          running(4, { type: "a" }),
          errand(5, { type: "a", status: "completed" }),
          running(6, { type: "a" }),
        );
        const page = (filter: Parameters<Reads["errandPage"]>[0], after = "", limit = 10) =>
          driver.reads.errandPage(filter, after, limit, "oldest").then(ids);
        const active = { status: "active" } as const;
        expect(await page(active)).toEqual([2, 4, 6].map(errandId));
        expect(await page(active, errandId(2), 1)).toEqual([errandId(4)]);
        expect(await page({ status: "failed" })).toEqual([]);
        expect(await page({ status: "nonsense" })).toEqual([]);
        const typeA = { type: "a" } as const;
        expect(await page(typeA)).toEqual([1, 4, 5, 6].map(errandId));
        expect(await page(typeA, errandId(1), 2)).toEqual([4, 5].map(errandId));
        expect(await page({ type: "c" })).toEqual([]);
        expect(await driver.reads.errandPage(active, "", 1, "oldest")).toStrictEqual([
          running(2, { type: "b" }),
        ]);
      });

      test("errandPage filters by status and type together, in id order from `after`", async () => {
        const driver = await fresh();
        // Inserted out of id order.
        await insert(
          driver,
          running(6, { type: "a" }),
          errand(1, { type: "a", status: "failed" }),
          running(2, { type: "a" }),
          errand(3, { type: "b", status: "failed" }),
          running(4, { type: "a" }),
          errand(5, { type: "a", status: "failed" }),
          errand(7, { type: "ab", status: "failed" }),
        );
        const page = (filter: Parameters<Reads["errandPage"]>[0], after = "", limit = 10) =>
          driver.reads.errandPage(filter, after, limit, "oldest").then(ids);
        const activeA = { status: "active", type: "a" } as const;
        expect(await page(activeA)).toEqual([2, 4, 6].map(errandId));
        expect(await page(activeA, errandId(2), 1)).toEqual([errandId(4)]);
        expect(await page(activeA, errandId(6))).toEqual([]);
        expect(await page({ status: "failed", type: "a" })).toEqual([1, 5].map(errandId));
        expect(await page({ status: "failed", type: "b" })).toEqual([errandId(3)]);
        expect(await page({ status: "inactive", type: "a" })).toEqual([]);
        // An absent key does not filter: {} is every errand.
        expect(await page({ status: undefined, type: "ab" })).toEqual([errandId(7)]);
        expect(await page({}, errandId(5), 2)).toEqual([6, 7].map(errandId));
        expect(
          await driver.reads.errandPage({ status: "failed", type: "a" }, "", 1, "oldest"),
        ).toStrictEqual([errand(1, { type: "a", status: "failed" })]);
      });

      test("errandPage newest first lists each shape of the filter in descending id order, before `after`", async () => {
        const driver = await fresh();
        // Inserted out of id order.
        await insert(
          driver,
          running(6, { type: "a" }),
          errand(1, { type: "a", status: "failed" }),
          running(2, { type: "b" }),
          errand(3, { type: "b", status: "failed" }),
          running(4, { type: "a" }),
          errand(5, { type: "a", status: "failed" }),
          errand(7, { type: "ab" }),
        );
        const page = (filter: Parameters<Reads["errandPage"]>[0], after = "", limit = 10) =>
          driver.reads.errandPage(filter, after, limit, "newest").then(ids);
        const nth = (...ns: number[]) => ns.map(errandId);
        expect(await page({})).toEqual(nth(7, 6, 5, 4, 3, 2, 1));
        expect(await page({}, "", 2)).toEqual(nth(7, 6));
        expect(await page({}, errandId(6), 2)).toEqual(nth(5, 4));
        expect(await page({}, errandId(2), 2)).toEqual(nth(1));
        expect(await page({}, errandId(1))).toEqual([]);
        // `after` need not be an id stored: the ids below it.
        expect(await page({}, `${errandId(4)}0`, 10)).toEqual(nth(4, 3, 2, 1));
        const active = { status: "active" } as const;
        expect(await page(active)).toEqual(nth(6, 4, 2));
        expect(await page(active, errandId(6), 1)).toEqual(nth(4));
        // A cursor the filter does not match: the matching errands below it.
        expect(await page(active, errandId(5))).toEqual(nth(4, 2));
        const typeA = { type: "a" } as const;
        expect(await page(typeA)).toEqual(nth(6, 5, 4, 1));
        expect(await page(typeA, errandId(5), 2)).toEqual(nth(4, 1));
        expect(await page({ type: "c" })).toEqual([]);
        const failedA = { status: "failed", type: "a" } as const;
        expect(await page(failedA)).toEqual(nth(5, 1));
        expect(await page(failedA, errandId(5))).toEqual(nth(1));
        expect(await page(failedA, errandId(3))).toEqual(nth(1));
        expect(await page(failedA, errandId(1))).toEqual([]);
        expect(await page({ status: "failed", type: "b" })).toEqual(nth(3));
        expect(await driver.reads.errandPage(failedA, "", 1, "newest")).toStrictEqual([
          errand(5, { type: "a", status: "failed" }),
        ]);
      });

      test("scheduledPage lists scheduled errands soonest first, then by id, from a cursor", async () => {
        const driver = await fresh();
        const at = (n: number, runAt: number) => errand(n, { status: "scheduled", runAt });
        await insert(
          driver,
          at(1, T0 + 500),
          at(2, T0 + 100),
          errand(3),
          at(4, T0 + 100),
          running(5),
          at(6, T0 + 300),
          errand(7, { status: "failed" }),
          at(8, T0 + 100),
        );
        const page = (after: { runAt: number; id: string } | null, limit = 10) =>
          driver.reads.scheduledPage(after, limit).then(ids);
        expect(await page(null)).toEqual([2, 4, 8, 6, 1].map(errandId));
        expect(await page(null, 2)).toEqual([2, 4].map(errandId));
        // Within one runAt, by id; then the later ones.
        expect(await page({ runAt: T0 + 100, id: errandId(4) }, 2)).toEqual([8, 6].map(errandId));
        expect(await page({ runAt: T0 + 300, id: errandId(6) }, 2)).toEqual([errandId(1)]);
        expect(await page({ runAt: T0 + 500, id: errandId(1) })).toEqual([]);
        // A cursor need not name a stored errand.
        expect(await page({ runAt: T0 + 200, id: "" })).toEqual([6, 1].map(errandId));
        expect(await driver.reads.scheduledPage(null, 1)).toStrictEqual([at(2, T0 + 100)]);
      });

      test("errandPageByName lists the errands whose name starts with a prefix, in id order", async () => {
        const driver = await fresh();
        await insert(
          driver,
          errand(1, { name: "report-b" }),
          errand(2, { name: "report" }),
          errand(3, { name: "reporting" }),
          errand(4, { name: "Report-c" }),
          errand(5, { name: "repo" }),
          errand(6, { name: "report-a", status: "completed" }),
          errand(7, { name: "xreport" }),
        );
        const page = (prefix: string, after = "", limit = 10) =>
          driver.reads.errandPageByName(prefix, after, limit, "oldest").then(ids);
        expect(await page("report")).toEqual([1, 2, 3, 6].map(errandId));
        expect(await page("report", "", 2)).toEqual([1, 2].map(errandId));
        expect(await page("report", errandId(2), 2)).toEqual([3, 6].map(errandId));
        expect(await page("report", errandId(6))).toEqual([]);
        expect(await page("report-")).toEqual([1, 6].map(errandId));
        expect(await page("Report")).toEqual([errandId(4)]);
        expect(await page("reportz")).toEqual([]);
        expect(await page("r")).toEqual([1, 2, 3, 5, 6].map(errandId));
        expect(await driver.reads.errandPageByName("repo", "", 10, "oldest")).toStrictEqual(
          [1, 2, 3, 5, 6].map((n) => expect.objectContaining({ id: errandId(n) })),
        );
      });

      test("errandPageByName newest first lists the names with a prefix in descending id order, before `after`", async () => {
        const driver = await fresh();
        await insert(
          driver,
          errand(4, { name: "report-a" }),
          errand(1, { name: "report-b" }),
          errand(2, { name: "report" }),
          errand(3, { name: "xreport" }),
          errand(5, { name: "reporting", status: "completed" }),
          errand(6, { name: "Report" }),
        );
        const page = (prefix: string, after = "", limit = 10) =>
          driver.reads.errandPageByName(prefix, after, limit, "newest").then(ids);
        const nth = (...ns: number[]) => ns.map(errandId);
        expect(await page("report")).toEqual(nth(5, 4, 2, 1));
        expect(await page("report", "", 2)).toEqual(nth(5, 4));
        expect(await page("report", errandId(4), 2)).toEqual(nth(2, 1));
        // A cursor whose name has not the prefix, or no errand at all.
        expect(await page("report", errandId(3))).toEqual(nth(2, 1));
        expect(await page("report", `${errandId(4)}0`)).toEqual(nth(4, 2, 1));
        expect(await page("report", errandId(1))).toEqual([]);
        expect(await page("report-")).toEqual(nth(4, 1));
        expect(await page("Report")).toEqual(nth(6));
        expect(await page("reportz")).toEqual([]);
        expect(await driver.reads.errandPageByName("report-", "", 1, "newest")).toStrictEqual([
          errand(4, { name: "report-a" }),
        ]);
      });

      test("errandPageByName matches %, _, \\ and characters beyond ASCII literally", async () => {
        const driver = await fresh();
        const names = [
          "50%_off", // 1
          "50%x", // 2
          "50a_off", // 3
          "a_b", // 4
          "axb", // 5
          "back\\slash", // 6
          "backxslash", // 7
          "über", // 8
          "uber", // 9
          "Über", // 10
          "日本語", // 11
          "日本", // 12
          "😀x", // 13
          "😁", // 14
          "\u{10FFFF}a", // 15
          "\uD7FF", // 16
          "\uE000", // 17
        ];
        await insert(driver, ...names.map((name, i) => errand(i + 1, { name })));
        const page = (prefix: string) =>
          driver.reads.errandPageByName(prefix, "", 100, "oldest").then(ids);
        const nth = (...ns: number[]) => ns.map(errandId);
        expect(await page("50%")).toEqual(nth(1, 2));
        expect(await page("50%_")).toEqual(nth(1));
        expect(await page("a_")).toEqual(nth(4));
        expect(await page("back\\")).toEqual(nth(6));
        expect(await page("ü")).toEqual(nth(8));
        expect(await page("日本")).toEqual(nth(11, 12));
        expect(await page("日本語")).toEqual(nth(11));
        expect(await page("😀")).toEqual(nth(13));
        expect(await page("\u{10FFFF}")).toEqual(nth(15));
        // The character just below the surrogates: its successor is U+E000, not one of them.
        expect(await page("\uD7FF")).toEqual(nth(16));
      });

      test("errandIdsWhere answers the ids of a filter in id order from `after`, at most `limit`", async () => {
        const driver = await fresh();
        await insert(
          driver,
          running(4, { type: "a" }),
          errand(1, { type: "a" }),
          running(2, { type: "b" }),
          errand(3, { type: "b" }),
          running(5, { type: "a" }),
          errand(6, { type: "a" }),
        );
        const where = (filter: Parameters<WriteTx["errandIdsWhere"]>[0], after = "", limit = 10) =>
          driver.write((tx) => tx.errandIdsWhere(filter, after, limit));
        expect(await where({})).toEqual([1, 2, 3, 4, 5, 6].map(errandId));
        expect(await where({}, errandId(2), 3)).toEqual([3, 4, 5].map(errandId));
        expect(await where({ status: "active" })).toEqual([2, 4, 5].map(errandId));
        expect(await where({ status: "inactive" }, errandId(1))).toEqual([3, 6].map(errandId));
        expect(await where({ status: "failed" })).toEqual([]);
        expect(await where({ type: "a" })).toEqual([1, 4, 5, 6].map(errandId));
        expect(await where({ type: "a" }, "", 2)).toEqual([1, 4].map(errandId));
        expect(await where({ type: "c" })).toEqual([]);
        expect(await where({ type: "a", status: "active" })).toEqual([4, 5].map(errandId));
        expect(await where({ type: "a", status: "active" }, errandId(4))).toEqual([errandId(5)]);
        expect(await where({ type: "b", status: "inactive" })).toEqual([errandId(3)]);
        // Inside a write, its own changes count.
        const inWrite = await driver.write(async (tx) => {
          const e = await tx.lockErrand(errandId(6));
          if (e) await tx.saveErrand({ ...e, status: "failed" });
          return tx.errandIdsWhere({ type: "a", status: "failed" }, "", 10);
        });
        expect(inWrite).toEqual([errandId(6)]);
      });
    });

    describe("sweeps", () => {
      test("dueIds answers scheduled errands whose time has come, soonest first, at most `limit`", async () => {
        const driver = await fresh();
        const now = T0 + 1000;
        await insert(
          driver,
          errand(1, { status: "scheduled", runAt: now - 100 }),
          errand(2, { status: "scheduled", runAt: now }),
          errand(3, { status: "scheduled", runAt: now - 300 }),
          errand(4, { status: "scheduled", runAt: now + 1 }),
          // Blocked keeps its start time for when it is unblocked: never due while blocked.
          errand(5, { status: "blocked", runAt: now - 500 }),
          errand(6, { status: "inactive" }),
        );
        const due = (at: number, limit: number) => driver.write((tx) => tx.dueIds(at, limit));
        expect(await due(now, 10)).toEqual([3, 1, 2].map(errandId));
        expect(await due(now, 2)).toEqual([3, 1].map(errandId));
        expect(await due(now - 301, 10)).toEqual([]);
        expect(await due(now + 1, 10)).toEqual([3, 1, 2, 4].map(errandId));
      });

      test("overdueIds answers active errands past their TTL deadline, soonest first, at most `limit`", async () => {
        const driver = await fresh();
        const now = T0 + 1000;
        await insert(
          driver,
          running(1, { ttlDeadline: now - 10 }),
          running(2, { ttlDeadline: now }),
          running(3, { ttlDeadline: now - 20 }),
          running(4, { ttlDeadline: now + 1 }),
          running(5, { ttlDeadline: Number.MAX_SAFE_INTEGER }),
          running(6, { heartbeatDeadline: now - 100 }),
          errand(7),
        );
        const overdue = (at: number, limit: number) =>
          driver.write((tx) => tx.overdueIds(at, limit));
        expect(await overdue(now, 10)).toEqual([3, 1, 2].map(errandId));
        expect(await overdue(now, 1)).toEqual([errandId(3)]);
        expect(await overdue(now - 21, 10)).toEqual([]);
      });

      test("silentIds answers active errands past their heartbeat deadline, soonest first, at most `limit`", async () => {
        const driver = await fresh();
        const now = T0 + 1000;
        await insert(
          driver,
          running(1, { heartbeatDeadline: now }),
          running(2, { heartbeatDeadline: now - 5 }),
          running(3, { heartbeatDeadline: now + 1 }),
          running(4, { heartbeatDeadline: now - 50 }),
          running(5, { ttlDeadline: now - 100 }),
          errand(6),
        );
        const silent = (at: number, limit: number) => driver.write((tx) => tx.silentIds(at, limit));
        expect(await silent(now, 10)).toEqual([4, 2, 1].map(errandId));
        expect(await silent(now, 2)).toEqual([4, 2].map(errandId));
        expect(await silent(now - 51, 10)).toEqual([]);
        // A heartbeat moves an errand out of the sweep.
        await driver.write((tx) => tx.extendHeartbeat(errandId(4), now + 10_000));
        expect(await silent(now, 10)).toEqual([2, 1].map(errandId));
      });

      test("finishedBefore answers finished errands outside pipelines, soonest first, at most `limit`", async () => {
        const driver = await fresh();
        const cutoff = T0 + 1000;
        const p = pipeline(1, { status: "completed" });
        await driver.write((tx) => tx.insertPipeline(p));
        const done = (
          n: number,
          status: "completed" | "failed",
          finished: number,
          fields: Partial<ErrandRecord> = {},
        ) =>
          errand(n, {
            status,
            finished,
            completed: status === "completed" ? finished : null,
            failed: status === "failed" ? finished : null,
            ...fields,
          });
        await insert(
          driver,
          done(1, "completed", cutoff - 10),
          done(2, "failed", cutoff - 30),
          done(3, "completed", cutoff),
          done(4, "completed", cutoff - 500, { pipeline: p.id }),
          done(5, "failed", cutoff - 20),
          errand(6, { created: T0 - 5000 }),
          running(7, { started: T0 - 5000 }),
          done(8, "completed", cutoff + 10),
        );
        const finished = (before: number, limit: number) =>
          driver.write((tx) => tx.finishedBefore(before, limit));
        expect(await finished(cutoff, 10)).toEqual([2, 5, 1].map(errandId));
        expect(await finished(cutoff, 2)).toEqual([2, 5].map(errandId));
        expect(await finished(cutoff + 11, 10)).toEqual([2, 5, 1, 3, 8].map(errandId));
        // Retried: no longer finished.
        const retried = await driver.reads.errand(errandId(2));
        if (retried) await save(driver, { ...retried, status: "inactive", finished: null });
        expect(await finished(cutoff, 10)).toEqual([5, 1].map(errandId));
      });
    });

    describe("pipelines", () => {
      test("insertPipeline, pipeline and savePipeline keep every field", async () => {
        const driver = await fresh();
        const bare = pipeline(1, { name: "nightly — é 😀" });
        const full = pipeline(2, {
          deleteOnCompleted: true,
          status: "completed",
          ended: T0 + 50,
          finished: T0 + 60,
        });
        await driver.write(async (tx) => {
          await tx.insertPipeline(bare);
          await tx.insertPipeline(full);
        });
        expect(await driver.reads.pipeline(bare.id)).toStrictEqual(bare);
        expect(await driver.reads.pipeline(full.id)).toStrictEqual(full);
        expect(await driver.write((tx) => tx.pipeline(full.id))).toStrictEqual(full);
        expect(await driver.reads.pipeline(pipelineId(9))).toBeNull();

        const active = { ...bare, status: "active" } as const;
        await driver.write((tx) => tx.savePipeline(active));
        expect(await driver.reads.pipeline(bare.id)).toStrictEqual(active);
        const completed = {
          ...bare,
          status: "completed",
          ended: T0 + 70,
          finished: T0 + 70,
        } as const;
        await driver.write((tx) => tx.savePipeline(completed));
        expect(await driver.reads.pipeline(bare.id)).toStrictEqual(completed);
        // An errand retried after it settled: active again, no longer finished.
        const reopened = { ...completed, status: "active", finished: null } as const;
        await driver.write((tx) => tx.savePipeline(reopened));
        expect(await driver.reads.pipeline(bare.id)).toStrictEqual(reopened);
      });

      test("dependencies answers edges by errand names in the order sent; dependencyResults the names and results depended on", async () => {
        const driver = await fresh();
        const p = pipeline(1);
        const q = pipeline(2);
        const named = (n: number, name: string, fields: Partial<ErrandRecord> = {}) =>
          errand(n, { name, pipeline: p.id, ...fields });
        const fetch = named(1, "fetch", { status: "completed", results: '{"rows":3}' });
        const parse = named(2, "parse", { status: "inactive" });
        const merge = named(3, "merge", { status: "blocked" });
        const report = named(4, "report", { status: "blocked" });
        const other = errand(5, { name: "other", pipeline: q.id, status: "completed" });
        await driver.write(async (tx) => {
          await tx.insertPipeline(p);
          await tx.insertPipeline(q);
          for (const e of [fetch, parse, merge, report, other]) await tx.insertErrand(e);
          await tx.insertDependencies(p.id, [
            [report.id, merge.id],
            [merge.id, parse.id],
            [merge.id, fetch.id],
            [parse.id, fetch.id],
          ]);
          await tx.insertDependencies(q.id, []);
        });
        expect(await driver.reads.dependencies(p.id)).toEqual([
          { target: "report", dependsOn: "merge" },
          { target: "merge", dependsOn: "parse" },
          { target: "merge", dependsOn: "fetch" },
          { target: "parse", dependsOn: "fetch" },
        ]);
        expect(await driver.reads.dependencies(q.id)).toEqual([]);
        const results = await driver.reads.dependencyResults(merge.id);
        expect([...results].sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual([
          { name: "fetch", results: '{"rows":3}' },
          { name: "parse", results: null },
        ]);
        expect(await driver.reads.dependencyResults(fetch.id)).toEqual([]);
        expect(ids(await driver.reads.pipelineErrands(p.id))).toEqual(
          [fetch, parse, merge, report].map((e) => e.id),
        );
        expect(await driver.reads.pipelineErrands(pipelineId(9))).toEqual([]);
      });

      test("pipelineProgress flags failed, unfinished, started and pending errands", async () => {
        const driver = await fresh();
        const never = { started: null };
        const cases: Array<[Array<Partial<ErrandRecord>>, PipelineProgress]> = [
          [
            [{ status: "inactive" }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: false, anyPending: true },
          ],
          [
            [{ status: "blocked" }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: false, anyPending: false },
          ],
          [
            [{ status: "scheduled" }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: false, anyPending: true },
          ],
          [
            [{ status: "active", started: T0 }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: true, anyPending: true },
          ],
          [
            [{ status: "completed", started: T0 }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: true, anyPending: false },
          ],
          // Completed by an operator without ever being claimed still counts as started.
          [
            [{ status: "completed", ...never }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: true, anyPending: false },
          ],
          // Back in the queue after a failed attempt: it has started.
          [
            [{ status: "inactive", started: T0, attempts: 1 }, { status: "blocked" }],
            { anyFailed: false, anyUnfinished: true, anyStarted: true, anyPending: true },
          ],
          [
            [
              { status: "completed", started: T0 },
              { status: "completed", started: T0 },
            ],
            { anyFailed: false, anyUnfinished: false, anyStarted: true, anyPending: false },
          ],
          [
            [{ status: "failed", started: T0 }, { status: "blocked" }],
            { anyFailed: true, anyUnfinished: true, anyStarted: true, anyPending: false },
          ],
          [
            [{ status: "failed", ...never }, { status: "inactive" }],
            { anyFailed: true, anyUnfinished: true, anyStarted: false, anyPending: true },
          ],
          [
            [
              { status: "failed", started: T0 },
              { status: "active", started: T0 },
            ],
            { anyFailed: true, anyUnfinished: true, anyStarted: true, anyPending: true },
          ],
        ];
        let n = 0;
        await driver.write(async (tx) => {
          for (const [i, [errands]] of cases.entries()) {
            const p = pipeline(i + 1);
            await tx.insertPipeline(p);
            for (const fields of errands)
              await tx.insertErrand(errand(++n, { ...fields, pipeline: p.id }));
          }
          // Another pipeline's errands never count.
          await tx.insertPipeline(pipeline(99));
          await tx.insertErrand(
            errand(++n, { status: "failed", started: T0, pipeline: pipelineId(99) }),
          );
        });
        const progress = await driver.write(async (tx) => {
          const all: PipelineProgress[] = [];
          for (const i of cases.keys()) all.push(await tx.pipelineProgress(pipelineId(i + 1)));
          return all;
        });
        expect(progress).toEqual(cases.map(([, expected]) => expected));
        // It follows a status change made in the same write.
        const changed = await driver.write(async (tx) => {
          const e = await tx.lockErrand(errandId(3));
          if (e) await tx.saveErrand({ ...e, status: "inactive" });
          return tx.pipelineProgress(pipelineId(2));
        });
        expect(changed).toEqual({
          anyFailed: false,
          anyUnfinished: true,
          anyStarted: false,
          anyPending: true,
        });
      });

      test("unblockable answers exactly the blocked dependents whose dependencies have all completed", async () => {
        const driver = await fresh();
        const p = pipeline(1);
        const q = pipeline(2);
        const [a, b] = [errand(1, { pipeline: p.id }), errand(2, { pipeline: p.id })];
        const c = errand(3, { pipeline: p.id, status: "blocked" }); // on a and b
        const d = errand(4, { pipeline: p.id, status: "blocked", runAt: T0 + 9000 }); // on a
        const e = errand(5, { pipeline: p.id, status: "inactive" }); // on a, not blocked
        const f = errand(6, { pipeline: p.id, status: "blocked" }); // on b
        const g = errand(7, { pipeline: p.id, status: "blocked" }); // on d
        const x = errand(8, { pipeline: q.id, status: "blocked" }); // another pipeline, on its y
        const y = errand(9, { pipeline: q.id });
        await driver.write(async (tx) => {
          await tx.insertPipeline(p);
          await tx.insertPipeline(q);
          for (const r of [a, b, c, d, e, f, g, x, y]) await tx.insertErrand(r);
          await tx.insertDependencies(p.id, [
            [c.id, a.id],
            [c.id, b.id],
            [d.id, a.id],
            [e.id, a.id],
            [f.id, b.id],
            [g.id, d.id],
          ]);
          await tx.insertDependencies(q.id, [[x.id, y.id]]);
        });
        const complete = (r: ErrandRecord) => save(driver, { ...r, status: "completed" });
        const unblockable = (id: string) =>
          driver
            .write((tx) => tx.unblockable(id))
            .then((rs) => [...rs].sort((l, r) => (l.id < r.id ? -1 : 1)));
        expect(await unblockable(a.id)).toEqual([]);
        await complete(a);
        expect(await unblockable(a.id)).toStrictEqual([d]);
        await complete(b);
        expect(await unblockable(b.id)).toStrictEqual([c, f]);
        expect(await unblockable(a.id)).toStrictEqual([c, d]);
        // Unblocked: no longer blocked, so never answered again.
        await save(driver, { ...c, status: "inactive" });
        expect(await unblockable(a.id)).toStrictEqual([d]);
        expect(await unblockable(y.id)).toEqual([]);
      });

      test("removePipeline deletes the pipeline and its edges, and no other's", async () => {
        const driver = await fresh();
        const [p, q] = [pipeline(1), pipeline(2)];
        const [a, b] = [
          errand(1, { pipeline: p.id }),
          errand(2, { pipeline: p.id, status: "blocked" }),
        ];
        const [c, d] = [
          errand(3, { pipeline: q.id }),
          errand(4, { pipeline: q.id, status: "blocked" }),
        ];
        await driver.write(async (tx) => {
          for (const x of [p, q]) await tx.insertPipeline(x);
          for (const e of [a, b, c, d]) await tx.insertErrand(e);
          await tx.insertDependencies(p.id, [[b.id, a.id]]);
          await tx.insertDependencies(q.id, [[d.id, c.id]]);
        });
        await driver.write(async (tx) => {
          for (const e of await tx.pipelineErrands(p.id)) await tx.removeErrand(e);
          await tx.removePipeline(p.id);
        });
        expect(await driver.reads.pipeline(p.id)).toBeNull();
        expect(await driver.reads.pipelineErrands(p.id)).toEqual([]);
        expect(await driver.reads.dependencies(p.id)).toEqual([]);
        expect(await driver.reads.dependencyResults(b.id)).toEqual([]);
        expect(await driver.reads.pipelinePage(undefined, "", 10)).toStrictEqual([q]);
        expect(await driver.reads.dependencies(q.id)).toEqual([{ target: "e4", dependsOn: "e3" }]);
        expect(ids(await driver.reads.pipelineErrands(q.id))).toEqual([c.id, d.id]);
        expect(await counts(driver.reads)).toEqual({ "t/inactive": 1, "t/blocked": 1 });
      });

      test("settledBefore answers pipelines settled before the cutoff, oldest first, at most `limit`", async () => {
        const driver = await fresh();
        const cutoff = T0 + 1000;
        await driver.write(async (tx) => {
          await tx.insertPipeline(pipeline(1, { status: "completed", finished: cutoff - 10 }));
          await tx.insertPipeline(pipeline(2, { status: "failed", finished: cutoff - 30 }));
          await tx.insertPipeline(pipeline(3, { status: "completed", finished: cutoff }));
          await tx.insertPipeline(pipeline(4, { status: "failed", finished: null }));
          await tx.insertPipeline(pipeline(5, { status: "active" }));
          await tx.insertPipeline(pipeline(6, { status: "completed", finished: cutoff - 20 }));
        });
        const settled = (before: number, limit: number) =>
          driver.write((tx) => tx.settledBefore(before, limit));
        expect(await settled(cutoff, 10)).toEqual([2, 6, 1].map(pipelineId));
        expect(await settled(cutoff, 2)).toEqual([2, 6].map(pipelineId));
        expect(await settled(cutoff + 1, 10)).toEqual([2, 6, 1, 3].map(pipelineId));
        expect(await settled(cutoff - 30, 10)).toEqual([]);
        // One of its errands retried: no longer settled.
        const reopened = await driver.reads.pipeline(pipelineId(6));
        if (reopened) {
          await driver.write((tx) =>
            tx.savePipeline({ ...reopened, status: "active", finished: null }),
          );
        }
        expect(await settled(cutoff, 10)).toEqual([2, 1].map(pipelineId));
      });

      test("pipelinePage lists pipelines in id order from `after`, at most `limit`, of one status or all", async () => {
        const driver = await fresh();
        const all = [
          pipeline(4, { status: "active" }),
          pipeline(2, { status: "completed", ended: T0, finished: T0 }),
          pipeline(5, { status: "active" }),
          pipeline(1),
          pipeline(3, { status: "active" }),
        ];
        await driver.write(async (tx) => {
          for (const p of all) await tx.insertPipeline(p);
        });
        const page = (status: PipelineRecord["status"] | undefined, after = "", limit = 10) =>
          driver.reads.pipelinePage(status, after, limit).then(ids);
        expect(await page(undefined)).toEqual([1, 2, 3, 4, 5].map(pipelineId));
        expect(await page(undefined, "", 2)).toEqual([1, 2].map(pipelineId));
        expect(await page(undefined, pipelineId(2), 2)).toEqual([3, 4].map(pipelineId));
        expect(await page(undefined, pipelineId(5), 2)).toEqual([]);
        expect(await page("active")).toEqual([3, 4, 5].map(pipelineId));
        expect(await page("active", pipelineId(3), 1)).toEqual([pipelineId(4)]);
        expect(await page("inactive")).toEqual([pipelineId(1)]);
        expect(await page("failed")).toEqual([]);
        expect(await driver.reads.pipelinePage("completed", "", 10)).toStrictEqual(
          all.filter((p) => p.status === "completed"),
        );
      });
    });

    describe("events", () => {
      test("committed events are placed in the log in commit order, with increasing ids", async () => {
        const driver = await fresh();
        await driver.write(async (tx) => {
          await tx.appendEvent("created", T0, "1");
          await tx.appendEvent("processing", T0, "2");
        });
        await driver.write((tx) => tx.appendEvent("completed", T0, "3"));
        const all = await logged(driver, 3);
        expect(all.map(({ event, payload }) => ({ event, payload }))).toEqual([
          { event: "created", payload: "1" },
          { event: "processing", payload: "2" },
          { event: "completed", payload: "3" },
        ]);
        for (let i = 1; i < all.length; i++) {
          expect(all[i]?.id).toBeGreaterThan(all[i - 1]?.id as number);
        }
      });

      test("onEvent hears each committed event once, in the log's order, never a failed write's", async () => {
        const driver = await fresh();
        const heard: EventRecord[] = [];
        const stop = driver.onEvent(({ id, event, payload }) => heard.push({ id, event, payload }));
        await driver.write(async (tx) => {
          await tx.appendEvent("created", T0, "1");
          await tx.appendEvent("processing", T0, "2");
        });
        await driver
          .write(async (tx) => {
            await tx.appendEvent("failed", T0, "lost");
            throw new Error("boom");
          })
          .catch(() => {});
        await driver.write((tx) => tx.appendEvent("completed", T0, "3"));
        const log = await logged(driver, 3);
        const deadline = Date.now() + 5000;
        while (heard.length < 3 && Date.now() < deadline) await Bun.sleep(5);
        stop();
        expect(heard).toEqual(log);
        expect(heard.map((e) => e.payload)).toEqual(["1", "2", "3"]);
      });

      test("eventsAfter pages through events in id order", async () => {
        const driver = await fresh();
        await driver.write(async (tx) => {
          for (let i = 0; i < 5; i++) await tx.appendEvent("updated", T0 + i, `{"i":${i}}`);
        });
        const evs = eventIds(await logged(driver, 5));
        const page = (after: number, limit: number) =>
          driver.reads.eventsAfter(after, limit).then((rows) => rows.map((r) => r.id));
        expect(await page(0, 2)).toEqual(evs.slice(0, 2));
        expect(await page(evs[1] as number, 2)).toEqual(evs.slice(2, 4));
        expect(await page(evs[3] as number, 2)).toEqual(evs.slice(4));
        expect(await page(evs[4] as number, 2)).toEqual([]);
        expect((await driver.reads.eventsAfter(evs[2] as number, 1))[0]?.payload).toBe('{"i":3}');
      });

      test("eventBounds answers no oldest and a newest of 0 on an empty store", async () => {
        const driver = await fresh();
        expect(await driver.reads.eventBounds()).toEqual({ oldest: null, newest: 0 });
        expect(await driver.reads.eventsAfter(0, 10)).toEqual([]);
        await driver.write((tx) => tx.appendEvent("created", T0, "{}"));
        const id = (await logged(driver, 1))[0]?.id as number;
        expect(await driver.reads.eventBounds()).toEqual({ oldest: id, newest: id });
      });

      test("pruneEvents deletes only events created before the cutoff, at most `limit`, oldest first", async () => {
        const driver = await fresh();
        await driver.write(async (tx) => {
          for (const at of [100, 200, 300, 400, 500]) {
            await tx.appendEvent("updated", T0 + at, "{}");
          }
        });
        const evs = eventIds(await logged(driver, 5));
        const prune = (before: number, limit: number) =>
          driver.write((tx) => tx.pruneEvents(T0 + before, limit));
        const left = () => driver.reads.eventsAfter(0, 10).then((rows) => rows.map((r) => r.id));
        expect(await prune(100, 10)).toBe(0);
        expect(await prune(350, 2)).toBe(2);
        expect(await left()).toEqual(evs.slice(2));
        expect(await prune(350, 10)).toBe(1);
        expect(await left()).toEqual(evs.slice(3));
        expect(await prune(350, 10)).toBe(0);
        expect(await driver.reads.eventBounds()).toEqual({
          oldest: evs[3] as number,
          newest: evs[4] as number,
        });
      });

      test("eventBounds keeps the newest id once every event is pruned, and ids go on from it", async () => {
        const driver = await fresh();
        await driver.write(async (tx) => {
          await tx.appendEvent("created", T0, "{}");
          await tx.appendEvent("deleted", T0 + 1, "{}");
        });
        const evs = eventIds(await logged(driver, 2));
        expect(await driver.write((tx) => tx.pruneEvents(T0 + 2, 10))).toBe(2);
        expect(await driver.reads.eventBounds()).toEqual({
          oldest: null,
          newest: evs[1] as number,
        });
        expect(await driver.reads.eventsAfter(0, 10)).toEqual([]);
        await driver.write((tx) => tx.appendEvent("created", T0 + 3, "{}"));
        const next = (await logged(driver, 1))[0]?.id as number;
        expect(next).toBeGreaterThan(evs[1] as number);
        expect(await driver.reads.eventBounds()).toEqual({ oldest: next, newest: next });
      });
    });

    describe("idempotency keys", () => {
      test("idempotencyKey finds a remembered key only if it was created at or after `since`", async () => {
        const driver = await fresh();
        await driver.write((tx) => tx.rememberKey("k1", '{"body":1}', '{"id":"x"}', T0 + 100));
        const find = (key: string, since: number) =>
          driver.write((tx) => tx.idempotencyKey(key, T0 + since));
        expect(await find("k1", 0)).toEqual({ request: '{"body":1}', response: '{"id":"x"}' });
        expect(await find("k1", 100)).toEqual({ request: '{"body":1}', response: '{"id":"x"}' });
        expect(await find("k1", 101)).toBeNull();
        expect(await find("k2", 0)).toBeNull();
        expect(await find("K1", 0)).toBeNull();
      });

      test("rememberKey replaces a key that has left the window", async () => {
        const driver = await fresh();
        await driver.write((tx) => tx.rememberKey("k", "old request", "old response", T0));
        await driver.write(async (tx) => {
          expect(await tx.idempotencyKey("k", T0 + 1)).toBeNull();
          await tx.rememberKey("k", "new request", "new response", T0 + 10);
        });
        const found = await driver.write((tx) => tx.idempotencyKey("k", T0 + 1));
        expect(found).toEqual({ request: "new request", response: "new response" });
      });

      test("pruneKeys deletes up to `limit` keys created before the cutoff, oldest first", async () => {
        const driver = await fresh();
        await driver.write(async (tx) => {
          await tx.rememberKey("c", "r", "s", T0 + 300);
          await tx.rememberKey("a", "r", "s", T0 + 100);
          await tx.rememberKey("b", "r", "s", T0 + 200);
        });
        const kept = () =>
          driver.write(async (tx) => {
            const out: string[] = [];
            for (const key of ["a", "b", "c"]) if (await tx.idempotencyKey(key, 0)) out.push(key);
            return out;
          });
        expect(await driver.write((tx) => tx.pruneKeys(T0 + 100, 10))).toBe(0);
        expect(await driver.write((tx) => tx.pruneKeys(T0 + 250, 1))).toBe(1);
        expect(await kept()).toEqual(["b", "c"]);
        expect(await driver.write((tx) => tx.pruneKeys(T0 + 250, 10))).toBe(1);
        expect(await kept()).toEqual(["c"]);
        expect(await driver.write((tx) => tx.pruneKeys(T0 + 301, 10))).toBe(1);
        expect(await kept()).toEqual([]);
      });
    });

    describe("types", () => {
      test("setTypeControl stores a type's controls; typeControl and typeControls read them", async () => {
        const driver = await fresh();
        expect(await driver.reads.typeControls()).toEqual([]);
        expect(await driver.write((tx) => tx.typeControl("t"))).toBeNull();
        await driver.write(async (tx) => {
          await tx.setTypeControl({ type: "t", paused: true, concurrency: null, rateLimit: null });
          await tx.setTypeControl({ type: "s", paused: false, concurrency: 3, rateLimit: null });
        });
        expect(await driver.write((tx) => tx.typeControl("t"))).toEqual({
          type: "t",
          paused: true,
          concurrency: null,
          rateLimit: null,
        });
        expect(byType(await driver.reads.typeControls())).toEqual([
          { type: "s", paused: false, concurrency: 3, rateLimit: null },
          { type: "t", paused: true, concurrency: null, rateLimit: null },
        ]);
        await driver.write((tx) =>
          tx.setTypeControl({ type: "t", paused: false, concurrency: 0, rateLimit: null }),
        );
        expect(await driver.write((tx) => tx.typeControl("t"))).toEqual({
          type: "t",
          paused: false,
          concurrency: 0,
          rateLimit: null,
        });
        expect(byType(await driver.reads.typeControls())).toEqual([
          { type: "s", paused: false, concurrency: 3, rateLimit: null },
          { type: "t", paused: false, concurrency: 0, rateLimit: null },
        ]);
      });

      test("countsByTypeAndStatus follows inserts, status changes and removals, listing only counts above zero", async () => {
        const driver = await fresh();
        const r = driver.reads;
        expect(await r.countsByTypeAndStatus()).toEqual([]);

        await insert(driver, errand(1), errand(2), errand(3, { type: "u", status: "scheduled" }));
        expect(await counts(r)).toEqual({ "t/inactive": 2, "u/scheduled": 1 });

        // A claim: a status change of an errand read by nextClaimable.
        await claim(driver);
        expect(await counts(r)).toEqual({ "t/inactive": 1, "t/active": 1, "u/scheduled": 1 });

        // A status change of an errand read by lockErrand, then by a plain read.
        await driver.write(async (tx) => {
          const e = await tx.lockErrand(errandId(1));
          if (e) await tx.saveErrand({ ...e, status: "completed", finished: T0 + 10 });
        });
        expect(await counts(r)).toEqual({ "t/inactive": 1, "t/completed": 1, "u/scheduled": 1 });
        await driver.write(async (tx) => {
          const e = await tx.errand(errandId(3));
          if (e) await tx.saveErrand({ ...e, status: "inactive", runAt: null });
        });
        expect(await counts(r)).toEqual({ "t/inactive": 1, "t/completed": 1, "u/inactive": 1 });

        // A record read before the write it is saved in.
        const stale = await r.errand(errandId(2));
        if (stale) await save(driver, { ...stale, status: "failed", finished: T0 + 20 });
        expect(await counts(r)).toEqual({ "t/failed": 1, "t/completed": 1, "u/inactive": 1 });

        // Saved without a change of status, and saved twice in one write.
        await driver.write(async (tx) => {
          const e = await tx.lockErrand(errandId(3));
          if (!e) return;
          await tx.saveErrand({ ...e, progress: 5 });
          await tx.saveErrand({ ...e, status: "active" });
          await tx.saveErrand({ ...e, status: "failed" });
        });
        expect(await counts(r)).toEqual({ "t/failed": 1, "t/completed": 1, "u/failed": 1 });

        // Removals, down to nothing.
        await driver.write(async (tx) => {
          const e = await tx.lockErrand(errandId(1));
          if (e) await tx.removeErrand(e);
        });
        expect(await counts(r)).toEqual({ "t/failed": 1, "u/failed": 1 });
        await driver.write(async (tx) => {
          for (const id of await tx.errandIdsWhere({ status: "failed" }, "", 10)) {
            const e = await tx.lockErrand(id);
            if (e) await tx.removeErrand(e);
          }
        });
        expect(await r.countsByTypeAndStatus()).toEqual([]);
      });

      test("countsByTypeAndStatus follows a pipeline's errands as they are unblocked", async () => {
        const driver = await fresh();
        const p = pipeline(1);
        const a = errand(1, { pipeline: p.id });
        const b = errand(2, { pipeline: p.id, status: "blocked" });
        await driver.write(async (tx) => {
          await tx.insertPipeline(p);
          await tx.insertErrand(a);
          await tx.insertErrand(b);
          await tx.insertDependencies(p.id, [[b.id, a.id]]);
        });
        await save(driver, { ...a, status: "completed" });
        await driver.write(async (tx) => {
          for (const e of await tx.unblockable(a.id))
            await tx.saveErrand({ ...e, status: "inactive" });
        });
        expect(await counts(driver.reads)).toEqual({ "t/completed": 1, "t/inactive": 1 });
        await driver.write(async (tx) => {
          for (const e of await tx.pipelineErrands(p.id)) await tx.removeErrand(e);
          await tx.removePipeline(p.id);
        });
        expect(await counts(driver.reads)).toEqual({});
      });

      test("a rolled-back write leaves countsByTypeAndStatus unchanged", async () => {
        const driver = await fresh();
        await insert(driver, errand(1), errand(2), running(3, { type: "u" }));
        const before = await counts(driver.reads);
        expect(before).toEqual({ "t/inactive": 2, "u/active": 1 });
        const boom = new Error("boom");
        const failed = driver.write(async (tx) => {
          await tx.insertErrand(errand(4));
          await tx.insertErrand(errand(5, { type: "v" }));
          await claimIn(tx, "t");
          const e = await tx.lockErrand(errandId(3));
          if (e) await tx.removeErrand(e);
          expect(await counts(tx)).toEqual({ "t/inactive": 2, "t/active": 1, "v/inactive": 1 });
          throw boom;
        });
        await expect(failed).rejects.toBe(boom);
        expect(await counts(driver.reads)).toEqual(before);
        // Later writes count from what was kept.
        await claim(driver);
        expect(await counts(driver.reads)).toEqual({
          "t/inactive": 1,
          "t/active": 1,
          "u/active": 1,
        });
      });

      test("oldestWaiting answers when the longest-waiting inactive errand of a type was created", async () => {
        const driver = await fresh();
        expect(await driver.reads.oldestWaiting("t")).toBeNull();
        await insert(
          driver,
          errand(1, { priority: 5, created: T0 + 300 }),
          errand(2, { priority: -2, created: T0 + 50 }),
          errand(3, { priority: 0, created: T0 + 100 }),
          errand(4, { status: "scheduled", created: T0 }),
          running(5, { created: T0 + 1 }),
          errand(6, { type: "u", created: T0 + 2 }),
        );
        expect(await driver.reads.oldestWaiting("t")).toBe(T0 + 50);
        expect(await driver.reads.oldestWaiting("u")).toBe(T0 + 2);
        expect(await driver.reads.oldestWaiting("v")).toBeNull();
        // Claimed in priority order: the oldest waits longest.
        await claim(driver);
        expect(await driver.reads.oldestWaiting("t")).toBe(T0 + 50);
        await claim(driver);
        expect(await driver.reads.oldestWaiting("t")).toBe(T0 + 50);
        await claim(driver);
        expect(await driver.reads.oldestWaiting("t")).toBeNull();
      });
    });

    describe("minute history", () => {
      const M = 60_000;
      /** Minute i after T0's (a whole minute). */
      const minute = (i: number) => Math.floor(T0 / M) * M + i * M;
      /** Minute i as minuteCounts answers it. */
      const at = (i: number, completed: number, failed: number, waiting: number | null = null) => ({
        minute: minute(i),
        completed,
        failed,
        waiting,
      });
      /** Adds [minute i, type, completed, failed] counts, as one instance's sweep does. */
      const add = (driver: Driver, ...counts: Array<[number, string, number, number]>) =>
        driver.write((tx) =>
          tx.addMinuteCounts(
            counts.map(([i, type, completed, failed]) => ({
              minute: minute(i),
              type,
              completed,
              failed,
            })),
          ),
        );
      const sample = (driver: Driver, i: number, waiting: Record<string, number>) =>
        driver.write((tx) =>
          tx.setWaitingSample(
            minute(i),
            Object.entries(waiting).map(([type, n]) => ({ type, waiting: n })),
          ),
        );

      test("addMinuteCounts adds to the stored minutes, per type and in total", async () => {
        const driver = await fresh();
        const r = driver.reads;
        expect(await r.minuteCounts(0)).toEqual([]);
        await add(driver, [1, "t", 2, 1], [1, "u", 5, 0], [0, "t", 0, 3]);
        // A second instance's counts add up with the first's.
        await add(driver, [1, "t", 1, 1]);
        expect(await r.minuteCounts(minute(0))).toEqual([at(0, 0, 3), at(1, 8, 2)]);
        expect(await r.minuteCounts(minute(1))).toEqual([at(1, 8, 2)]);
        expect(await r.minuteCounts(minute(0), "t")).toEqual([at(0, 0, 3), at(1, 3, 2)]);
        // Every stored minute, with zeros for a type with nothing in them.
        expect(await r.minuteCounts(minute(0), "u")).toEqual([at(0, 0, 0), at(1, 5, 0)]);
        expect(await r.minuteCounts(minute(2))).toEqual([]);
      });

      test("setWaitingSample stores the last sample of a minute; 0 for a type it does not name", async () => {
        const driver = await fresh();
        const r = driver.reads;
        await add(driver, [0, "u", 1, 0]);
        await sample(driver, 0, { t: 4, v: 1 });
        expect(await r.minuteCounts(minute(0))).toEqual([at(0, 1, 0, 5)]);
        expect(await r.minuteCounts(minute(0), "t")).toEqual([at(0, 0, 0, 4)]);
        expect(await r.minuteCounts(minute(0), "u")).toEqual([at(0, 1, 0, 0)]);
        // Another sample of the same minute replaces the first, its counts untouched: a type
        // it does not name has none waiting.
        await sample(driver, 0, { t: 2 });
        expect(await r.minuteCounts(minute(0))).toEqual([at(0, 1, 0, 2)]);
        expect(await r.minuteCounts(minute(0), "v")).toEqual([at(0, 0, 0, 0)]);
        // A sample of no types: the minute was sampled, with none waiting.
        await sample(driver, 1, {});
        expect(await r.minuteCounts(minute(1))).toEqual([at(1, 0, 0, 0)]);
        expect(await r.minuteCounts(minute(1), "t")).toEqual([at(1, 0, 0, 0)]);
        // Counts added after a sample keep it.
        await add(driver, [1, "t", 0, 2]);
        expect(await r.minuteCounts(minute(1), "t")).toEqual([at(1, 0, 2, 0)]);
      });

      test("pruneMinuteCounts deletes up to `limit` of the oldest per-type minutes, and the totals before the cutoff", async () => {
        const driver = await fresh();
        await add(driver, [0, "t", 1, 0], [0, "u", 1, 0], [1, "t", 1, 0], [1, "u", 1, 0]);
        await add(driver, [2, "t", 1, 0], [2, "u", 1, 0]);
        await sample(driver, 1, { t: 3 });
        const prune = (before: number, limit: number) =>
          driver.write((tx) => tx.pruneMinuteCounts(minute(before), limit));
        expect(await prune(0, 10)).toBe(0);
        expect(await prune(2, 3)).toBe(3);
        // The totals of minutes before the cutoff went at once; their per-type rows follow.
        expect(await driver.reads.minuteCounts(0)).toEqual([at(2, 2, 0)]);
        expect(await prune(2, 3)).toBe(1);
        expect(await prune(2, 3)).toBe(0);
        expect(await driver.reads.minuteCounts(0, "t")).toEqual([at(2, 1, 0)]);
        // A minute counted again after its prune starts afresh.
        await add(driver, [0, "t", 1, 0]);
        expect(await driver.reads.minuteCounts(0, "t")).toEqual([at(0, 1, 0), at(2, 1, 0)]);
      });

      test("a rolled-back write leaves the minute history unchanged", async () => {
        const driver = await fresh();
        await add(driver, [0, "t", 1, 0]);
        const boom = new Error("boom");
        const failed = driver.write(async (tx) => {
          await tx.addMinuteCounts([{ minute: minute(0), type: "t", completed: 5, failed: 5 }]);
          await tx.setWaitingSample(minute(0), [{ type: "t", waiting: 9 }]);
          throw boom;
        });
        await expect(failed).rejects.toBe(boom);
        expect(await driver.reads.minuteCounts(0, "t")).toEqual([at(0, 1, 0)]);
      });
    });

    describe("schedules", () => {
      test("saveSchedule keeps every field, as schedule, lockSchedule and schedulePage read it; saving again replaces it", async () => {
        const driver = await fresh();
        const first = schedule("nightly", 100, {
          spec: {
            cron: "30 1 * * *",
            timezone: "Europe/London",
            errand: {
              name: "report ☃ \u0000",
              type: "report",
              options: { retries: 2, priority: -3, backoff: { type: "fixed", delay: 1000 } },
              data: { nested: { list: [1, "two", null] } },
            },
            overlap: "skip",
          },
          lastRunAt: T0 - 5,
          lastErrandId: errandId(9),
          created: T0 - 10,
          updated: T0 - 1,
        });
        await saveSchedules(driver, first);
        expect(await driver.reads.schedule("nightly")).toEqual(first);
        expect(await driver.write((tx) => tx.lockSchedule("nightly"))).toEqual(first);
        expect(await driver.reads.schedulePage("", 10)).toEqual([first]);
        expect(await driver.reads.schedule("Nightly")).toBeNull();
        expect(await driver.write((tx) => tx.lockSchedule("other"))).toBeNull();

        const second = schedule("nightly", null, {
          spec: { every: 5000, errand: { name: "n", type: "u" }, overlap: "allow" },
          created: first.created,
          updated: T0 + 7,
        });
        await saveSchedules(driver, second);
        expect(await driver.reads.schedule("nightly")).toEqual(second);
        expect(await driver.reads.schedulePage("", 10)).toEqual([second]);
      });

      test("schedulePage lists schedules by name in code point order from `after`, at most `limit`", async () => {
        const driver = await fresh();
        const all = ["b", "a", "B", "é", "a b", "aa"];
        await saveSchedules(driver, ...all.map((name, i) => schedule(name, i)));
        const order = ["B", "a", "a b", "aa", "b", "é"];
        expect(names(await driver.reads.schedulePage("", 100))).toEqual(order);
        expect(names(await driver.reads.schedulePage("", 2))).toEqual(["B", "a"]);
        expect(names(await driver.reads.schedulePage("a", 2))).toEqual(["a b", "aa"]);
        expect(names(await driver.reads.schedulePage("b", 10))).toEqual(["é"]);
        expect(names(await driver.reads.schedulePage("é", 10))).toEqual([]);
      });

      test("dueSchedules answers schedules whose next tick has come, soonest first, at most `limit`; never a paused one", async () => {
        const driver = await fresh();
        await saveSchedules(
          driver,
          schedule("late", 30),
          schedule("early", 10),
          schedule("paused", null),
          schedule("ahead", 50),
          schedule("now", 40),
        );
        const due = (now: number, limit: number) =>
          driver.write(async (tx) => names(await tx.dueSchedules(T0 + now, limit)));
        expect(await due(9, 10)).toEqual([]);
        expect(await due(40, 10)).toEqual(["early", "late", "now"]);
        expect(await due(40, 2)).toEqual(["early", "late"]);
        expect(await due(1_000_000, 10)).toEqual(["early", "late", "now", "ahead"]);
        // Moving the next tick on takes a schedule out of what is due.
        await driver.write(async (tx) => {
          const [first] = await tx.dueSchedules(T0 + 40, 1);
          if (first) await tx.saveSchedule({ ...first, nextRunAt: T0 + 100 });
        });
        expect(await due(40, 10)).toEqual(["late", "now"]);
      });

      test("recordTick records a schedule's tick once: a second time answers false", async () => {
        const driver = await fresh();
        const record = (name: string, tick: number) =>
          driver.write((tx) => tx.recordTick(name, T0 + tick, T0));
        expect(await record("a", 1)).toBe(true);
        expect(await record("a", 1)).toBe(false);
        expect(await record("a", 2)).toBe(true);
        expect(await record("b", 1)).toBe(true);
        // Within one write too.
        expect(
          await driver.write(async (tx) => [
            await tx.recordTick("c", T0, T0),
            await tx.recordTick("c", T0, T0),
          ]),
        ).toEqual([true, false]);
        // A write that rolls back keeps no tick.
        await expect(
          driver.write(async (tx) => {
            await tx.recordTick("d", T0, T0);
            throw new Error("boom");
          }),
        ).rejects.toThrow("boom");
        expect(await record("d", 0)).toBe(true);
      });

      test("removeSchedule deletes the schedule and its ticks, no other's, and answers whether there was one", async () => {
        const driver = await fresh();
        await saveSchedules(driver, schedule("a", 1), schedule("b", 2));
        await driver.write(async (tx) => {
          await tx.recordTick("a", T0 + 1, T0);
          await tx.recordTick("b", T0 + 1, T0);
        });
        expect(await driver.write((tx) => tx.removeSchedule("a"))).toBe(true);
        expect(await driver.write((tx) => tx.removeSchedule("a"))).toBe(false);
        expect(await driver.reads.schedule("a")).toBeNull();
        expect(names(await driver.reads.schedulePage("", 10))).toEqual(["b"]);
        expect(await driver.write((tx) => tx.recordTick("a", T0 + 1, T0))).toBe(true);
        expect(await driver.write((tx) => tx.recordTick("b", T0 + 1, T0))).toBe(false);
      });

      test("pruneTicks deletes up to `limit` ticks recorded before the cutoff, oldest first", async () => {
        const driver = await fresh();
        await driver.write(async (tx) => {
          await tx.recordTick("a", T0 + 3, T0 + 300);
          await tx.recordTick("a", T0 + 1, T0 + 100);
          await tx.recordTick("b", T0 + 2, T0 + 200);
        });
        /** The ticks still kept: recording one again answers false. */
        const kept = () =>
          driver
            .write(async (tx) => {
              const out: string[] = [];
              for (const [name, tick] of [
                ["a", 1],
                ["b", 2],
                ["a", 3],
              ] as const) {
                if (!(await tx.recordTick(name, T0 + tick, T0))) out.push(`${name}${tick}`);
              }
              // Only asked: what was recorded here goes with the write's rollback.
              throw new Kept(out);
            })
            .catch((error) => (error as Kept).ticks);
        expect(await driver.write((tx) => tx.pruneTicks(T0 + 100, 10))).toBe(0);
        expect(await driver.write((tx) => tx.pruneTicks(T0 + 250, 1))).toBe(1);
        expect(await kept()).toEqual(["b2", "a3"]);
        expect(await driver.write((tx) => tx.pruneTicks(T0 + 250, 10))).toBe(1);
        expect(await kept()).toEqual(["a3"]);
        expect(await driver.write((tx) => tx.pruneTicks(T0 + 301, 10))).toBe(1);
        expect(await kept()).toEqual([]);
      });
    });

    describe("health and closing", () => {
      test("probe and ping succeed on an open store", async () => {
        const driver = await fresh();
        expect(driver.isOpen).toBe(true);
        expect(driver.isClosing).toBe(false);
        await driver.reads.ping();
        await driver.write((tx) => tx.probe(T0));
        await driver.write(async (tx) => {
          await tx.probe(T0 + 1);
          await tx.ping();
        });
        await insert(driver, errand(1));
        await driver.reads.ping();
      });

      test("close finishes a write in flight; then writes and reads reject and isOpen is false", async () => {
        const driver = await fresh();
        const inFlight = insert(driver, errand(1));
        const closed = driver.close();
        expect(driver.isClosing).toBe(true);
        await inFlight;
        await closed;
        expect(driver.isOpen).toBe(false);
        const write = driver.write((tx) => tx.insertErrand(errand(2)));
        await expect(write).rejects.toBeInstanceOf(StorageUnavailable);
        const stage = driver.stage((tx) => tx.probe(T0));
        await expect(stage).rejects.toBeInstanceOf(StorageUnavailable);
        await expect(driver.reads.ping()).rejects.toBeInstanceOf(StorageUnavailable);
        await expect(driver.reads.errand(errandId(1))).rejects.toBeInstanceOf(StorageUnavailable);
      });
    });

    describe("deleteInBatches", () => {
      /** n events created at T0 + 1 … T0 + n; answers their ids. */
      const events = async (driver: Driver, n: number) => {
        await driver.write(async (tx) => {
          for (let i = 1; i <= n; i++) await tx.appendEvent("updated", T0 + i, "{}");
        });
        return eventIds(await logged(driver, n));
      };

      test("deleteInBatches runs batches as separate writes until one deletes fewer", async () => {
        const driver = await fresh();
        const evs = await events(driver, 10);
        // What each batch finds committed when it starts: the batches before it, on disk.
        const oldestAtStart: Array<number | null> = [];
        const deleted = await deleteInBatches(
          driver,
          async (tx, batch) => {
            oldestAtStart.push((await driver.reads.eventBounds()).oldest);
            return tx.pruneEvents(T0 + 100, batch);
          },
          3,
        );
        expect(deleted).toBe(10);
        expect(oldestAtStart).toEqual([evs[0], evs[3], evs[6], evs[9]] as number[]);
        expect(await driver.reads.eventsAfter(0, 100)).toEqual([]);

        // A backlog that is a multiple of the batch ends with a batch that deletes none.
        await events(driver, 6);
        let calls = 0;
        const again = await deleteInBatches(
          driver,
          (tx, batch) => {
            calls++;
            return tx.pruneEvents(T0 + 100, batch);
          },
          3,
        );
        expect([again, calls]).toEqual([6, 3]);
      });

      test("deleteInBatches stops after `rounds` batches, leaving the rest", async () => {
        const driver = await fresh();
        const evs = await events(driver, 10);
        let calls = 0;
        const deleted = await deleteInBatches(
          driver,
          (tx, batch) => {
            calls++;
            return tx.pruneEvents(T0 + 100, batch);
          },
          3,
          2,
        );
        expect([deleted, calls]).toEqual([6, 2]);
        const left = (await driver.reads.eventsAfter(0, 100)).map((e) => e.id);
        expect(left).toEqual(evs.slice(6));
      });

      test("a batch that fails rejects, and the batches before it stay deleted", async () => {
        const driver = await fresh();
        const evs = await events(driver, 10);
        const boom = new Error("boom");
        let calls = 0;
        const run = deleteInBatches(
          driver,
          async (tx, batch) => {
            const n = await tx.pruneEvents(T0 + 100, batch);
            if (++calls === 3) throw boom;
            return n;
          },
          3,
        );
        await expect(run).rejects.toBe(boom);
        const left = (await driver.reads.eventsAfter(0, 100)).map((e) => e.id);
        expect(left).toEqual(evs.slice(6));
      });
    });
  });
}
