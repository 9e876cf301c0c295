// The driver contract on the PostgreSQL engine (a schema of its own per test), and what only
// an engine with concurrent writers must show: events placed in commit order however their
// transactions began, claims that hold a type's limit across connections, and a schedule's
// tick recorded once and its row passed over while another write fires it.
// Needs ERRANDS_TEST_DATABASE=postgres://…; skipped, and said so, without it.

import { describe, expect, test } from "bun:test";
import { newErrand } from "../src/lifecycle/create.ts";
import { PostgresDriver } from "../src/store/postgres/driver.ts";
import { driverContract } from "./driver/contract.ts";
import { TEST_DATABASE } from "./harness.ts";

const url = TEST_DATABASE;
if (url === null) {
  console.warn("ERRANDS_TEST_DATABASE is not set: the PostgreSQL driver contract is skipped");
}

let schemas = 0;
async function open() {
  const schema = `errands_contract_${process.pid}_${++schemas}`;
  const driver = new PostgresDriver(url as string, { schema, poolSize: 6 });
  await driver.ready;
  return {
    driver,
    close: async () => {
      await driver.close();
      const admin = new Bun.SQL(url as string, { max: 1 });
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.close();
    },
  };
}

if (url !== null) driverContract("postgres", open);

/** A step one write waits on until the test gives it, or the test waits on until a write has. */
function signal(): { given: Promise<void>; give: () => void } {
  let give!: () => void;
  const given = new Promise<void>((resolve) => {
    give = resolve;
  });
  return { given, give };
}

describe.skipIf(url === null)("postgres: concurrent writers", () => {
  test("two writes that take event rows in one order and commit in the other: a resuming reader gets both", async () => {
    const { driver, close } = await open();
    try {
      const commit = signal();
      const appended = signal();
      // The first write inserts its event row, then waits; the second inserts and commits.
      const first = driver.write(async (tx) => {
        await tx.appendEvent("created", 1, '"first"');
        appended.give();
        await commit.given;
      });
      await appended.given;
      await driver.write((tx) => tx.appendEvent("created", 2, '"second"'));
      const wait = async (n: number) => {
        const deadline = Date.now() + 5000;
        for (;;) {
          const events = await driver.reads.eventsAfter(0, 10);
          if (events.length >= n || Date.now() > deadline) return events;
          await Bun.sleep(5);
        }
      };
      const seen = await wait(1);
      expect(seen.map((e) => e.payload)).toEqual(['"second"']);
      // A reader resuming after what it has seen gets the first write's event once it commits.
      const resumeAfter = seen[0]?.id as number;
      commit.give();
      await first;
      const all = await wait(2);
      expect(all.map((e) => e.payload)).toEqual(['"second"', '"first"']);
      const resumed = await driver.reads.eventsAfter(resumeAfter, 10);
      expect(resumed.map((e) => e.payload)).toEqual(['"first"']);
    } finally {
      await close();
    }
  });
});

describe.skipIf(url === null)("postgres: a deadlock's victim", () => {
  test("two writes locking two errands in opposite orders both commit: the one PostgreSQL aborts is run again", async () => {
    const { driver, close } = await open();
    try {
      const made = (n: number) => ({
        ...newErrand(
          { name: `e${n}`, type: "t" },
          { id: `01900000-0000-7000-8000-00000000000${n}`, now: n },
        ),
      });
      const [one, two] = [made(1), made(2)];
      await driver.write(async (tx) => {
        await tx.insertErrand(one);
        await tx.insertErrand(two);
      });
      const bothLockedOne = signal();
      const bothLockedTwo = signal();
      let runs = 0;
      // Each locks one errand, waits until the other has locked its own, then takes the other's:
      // a deadlock, the first time round. Each bumps progress on both.
      const crossing = (
        first: typeof one,
        second: typeof one,
        mine: ReturnType<typeof signal>,
        theirs: ReturnType<typeof signal>,
      ) =>
        driver.write(async (tx) => {
          runs++;
          const a = await tx.lockErrand(first.id);
          mine.give();
          await theirs.given;
          const b = await tx.lockErrand(second.id);
          if (!a || !b) throw new Error("missing");
          await tx.saveErrand({ ...a, progress: a.progress + 1 });
          await tx.saveErrand({ ...b, progress: b.progress + 1 });
        });
      await Promise.all([
        crossing(one, two, bothLockedOne, bothLockedTwo),
        crossing(two, one, bothLockedTwo, bothLockedOne),
      ]);
      // Both applied once: the victim's first run left nothing, its second run everything.
      expect((await driver.reads.errand(one.id))?.progress).toBe(2);
      expect((await driver.reads.errand(two.id))?.progress).toBe(2);
      expect(runs).toBe(3);
    } finally {
      await close();
    }
  });
});

describe.skipIf(url === null)("postgres: schedules across connections", () => {
  const T0 = 1_700_000_000_000;
  const due = (name: string) => ({
    name,
    spec: { every: 1000, errand: { name, type: "t" }, overlap: "allow" as const },
    paused: false,
    nextRunAt: T0,
    lastRunAt: null,
    lastErrandId: null,
    created: T0,
    updated: T0,
  });

  test("two writes recording one tick at once: the second waits for the first, then answers false", async () => {
    const { driver, close } = await open();
    try {
      const commit = signal();
      const recorded = signal();
      const first = driver.write(async (tx) => {
        const fresh = await tx.recordTick("s", T0, T0);
        recorded.give();
        await commit.given;
        return fresh;
      });
      await recorded.given;
      const second = driver.write((tx) => tx.recordTick("s", T0, T0));
      commit.give();
      expect(await Promise.all([first, second])).toEqual([true, false]);
    } finally {
      await close();
    }
  });

  test("dueSchedules passes over a schedule another write holds, and finds it no longer due once that write moved it on", async () => {
    const { driver, close } = await open();
    try {
      await driver.write(async (tx) => {
        await tx.saveSchedule(due("a"));
        await tx.saveSchedule({ ...due("b"), nextRunAt: T0 + 1 });
      });
      const commit = signal();
      const locked = signal();
      const first = driver.write(async (tx) => {
        const [a] = await tx.dueSchedules(T0 + 10, 1);
        locked.give();
        await commit.given;
        if (a) await tx.saveSchedule({ ...a, nextRunAt: T0 + 1000 });
        return a?.name;
      });
      await locked.given;
      const second = await driver.write(async (tx) =>
        (await tx.dueSchedules(T0 + 10, 10)).map((s) => s.name),
      );
      expect(second).toEqual(["b"]);
      commit.give();
      expect(await first).toBe("a");
      const after = await driver.write(async (tx) =>
        (await tx.dueSchedules(T0 + 10, 10)).map((s) => s.name),
      );
      expect(after).toEqual(["b"]);
    } finally {
      await close();
    }
  });
});
