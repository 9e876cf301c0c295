// Server CPU per request in the round trip (create, claim, complete), in one process: the app
// answers through app.handle, no sockets, so what is counted is the app's own work per request
// (routing, validation, rules, SQL, events, serialisation), not the HTTP server's or a client's.
// Usage: bun scripts/bench/request-cpu.ts [--n 20000] [--c 32] [--runs 5]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../src/app.ts";
import { systemClock } from "../../src/clock.ts";
import { loadConfig, parseFlags } from "../../src/config.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";

const { flags } = parseFlags(process.argv.slice(2));
const N = Number(flags.get("n") ?? 20_000);
const C = Number(flags.get("c") ?? 32);
const RUNS = Number(flags.get("runs") ?? 5);

const dir = mkdtempSync(join(tmpdir(), "errands-request-cpu-"));
const config = loadConfig({ ERRANDS_STORAGE: `${dir}/` });
const driver = new SqliteDriver(config.storage, { sync: config.sync });
const { app } = createApp({ driver, clock: systemClock, config });

const json = (method: string, path: string, body?: unknown) =>
  app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );

async function roundTrips(type: string, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < n) {
        const i = next++;
        await (await json("POST", "/v1/errands/", { name: `e${i}`, type, data: { i } })).text();
        const claim = await json("POST", `/v1/errands/process/${type}`);
        if (claim.status !== 200) {
          await claim.text();
          continue;
        }
        const { id } = ((await claim.json()) as { results: { id: string } }).results;
        await (await json("PUT", `/v1/errand/${id}/completed`, { results: { ok: true } })).text();
      }
    }),
  );
}

await roundTrips("warm", 2000);
const perRequest: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const before = process.cpuUsage();
  await roundTrips(`r${run}`, N);
  const used = process.cpuUsage(before);
  perRequest.push((used.user + used.system) / (3 * N));
}
perRequest.sort((a, b) => a - b);
console.log(
  `server CPU per request (µs): median ${perRequest[Math.floor(RUNS / 2)]?.toFixed(1)}, all ${perRequest.map((x) => x.toFixed(1)).join(" ")}`,
);
await driver.close();
rmSync(dir, { recursive: true, force: true });
