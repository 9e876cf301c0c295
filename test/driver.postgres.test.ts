// The driver contract on the PostgreSQL engine (a schema of its own per test), and what only
// an engine with concurrent writers must show: events placed in commit order however their
// transactions began, and claims that hold a type's limit across connections.
// Needs ERRANDS_TEST_DATABASE=postgres://…; skipped, and said so, without it.

import { describe, expect, test } from "bun:test";
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

describe.skipIf(url === null)("postgres: concurrent writers", () => {
  test("two writes that take event rows in one order and commit in the other: a resuming reader gets both", async () => {
    const { driver, close } = await open();
    try {
      let letFirstCommit!: () => void;
      const gate = new Promise<void>((resolve) => {
        letFirstCommit = resolve;
      });
      let firstAppended!: () => void;
      const appended = new Promise<void>((resolve) => {
        firstAppended = resolve;
      });
      // The first write inserts its event row, then waits; the second inserts and commits.
      const first = driver.write(async (tx) => {
        await tx.appendEvent("created", 1, '"first"');
        firstAppended();
        await gate;
      });
      await appended;
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
      letFirstCommit();
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
