// The driver contract on the SQLite engine: a fresh database file per test, fsync'd commits.

import { afterAll } from "bun:test";
import { join } from "node:path";
import { SqliteDriver } from "../src/store/sqlite/driver.ts";
import { driverContract } from "./driver/contract.ts";
import { removeTempDirs, tempDir } from "./harness.ts";

afterAll(removeTempDirs);

driverContract("sqlite", async () => {
  const driver = new SqliteDriver(join(tempDir(), "errands.sqlite"), { sync: "full" });
  return { driver, close: () => driver.close() };
});
