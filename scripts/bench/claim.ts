// Claim latency with 10k, 100k and 1M errands of one type waiting: the cost must stay flat.
// Usage: bun scripts/bench/claim.ts [sizes=10000,100000,1000000] [claims=2000] [sync=normal|full]
// Claims go through the real app (app.handle), one at a time, on a fresh temp database per size.

import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../src/app.ts";
import { systemClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { SqliteDriver as Store } from "../../src/store/sqlite/driver.ts";

const sizes = (process.argv[2] ?? "10000,100000,1000000").split(",").map(Number);
const claims = Number(process.argv[3] ?? 2000);
const sync = process.argv[4] ?? "normal";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

console.log(`claim latency, ${claims} sequential claims per size, ERRANDS_SYNC=${sync}`);
console.log("waiting\tfill s\tp50 µs\tp99 µs\tmean µs\tdb MiB");
for (const size of sizes) {
  const dir = mkdtempSync(join(tmpdir(), "errands-bench-"));
  const config = loadConfig({ ERRANDS_STORAGE: `${dir}/`, ERRANDS_SYNC: sync });
  const store = new Store(config.storage, { sync: config.sync });
  const { app } = createApp({ driver: store, clock: systemClock, config });

  // Fill with plain inserts in large transactions: the figure is about claiming, not creating.
  const fillStart = performance.now();
  const insert = store.writer.prepare(
    `INSERT INTO errands (id, name, type, status, priority, options, created)
     VALUES (?, ?, 'bench', 'inactive', ?, '{}', ?)`,
  );
  const fill = store.writer.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      insert.run(Bun.randomUUIDv7(), `errand ${i}`, i % 10, Date.now());
    }
  });
  for (let i = 0; i < size; i += 50_000) fill(i, Math.min(size, i + 50_000));
  const fillSeconds = (performance.now() - fillStart) / 1000;

  const times: number[] = [];
  for (let i = 0; i < claims; i++) {
    const start = performance.now();
    const res = await app.handle(
      new Request("http://localhost/v1/errands/process/bench", { method: "POST" }),
    );
    await res.arrayBuffer();
    times.push((performance.now() - start) * 1000);
    if (res.status !== 200) throw new Error(`claim answered ${res.status}`);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const mib = statSync(config.storage).size / 2 ** 20;
  console.log(
    [
      size,
      fillSeconds.toFixed(1),
      percentile(times, 50).toFixed(0),
      percentile(times, 99).toFixed(0),
      mean.toFixed(0),
      mib.toFixed(0),
    ].join("\t"),
  );
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
