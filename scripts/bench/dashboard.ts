// What the dashboard reads, with many errands stored: the server runs as a process of its own
// on a fresh store, is filled with --n errands (default 1,000,000) over 20 types in every
// status, then each route behind a view is timed from a client, --runs times (default 20).
//
// Usage: bun scripts/bench/dashboard.ts [--n 1000000] [--runs 20] [--database postgres://…]
// With --database, the server runs on PostgreSQL, in a database made and dropped here.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { parseFlags } from "../../src/config.ts";

const { flags } = parseFlags(process.argv.slice(2));
const N = Number(flags.get("n") ?? 1_000_000);
const RUNS = Number(flags.get("runs") ?? 20);
const DATABASE = flags.get("database") ?? null;
const TYPES = 20;
const BATCH = 1000;

const dir = mkdtempSync(join(tmpdir(), "errands-bench-dashboard-"));
let database: string | null = null;
let admin: SQL | null = null;
if (DATABASE) {
  const name = `errands_bench_${process.pid}`;
  admin = new SQL(DATABASE);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(DATABASE);
  url.pathname = `/${name}`;
  database = url.toString();
}

const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
const port = probe.port ?? 0;
await probe.stop(true);
const base = `http://127.0.0.1:${port}`;
const server = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), "serve"], {
  env: {
    ...process.env,
    ERRANDS_PORT: `127.0.0.1:${port}`,
    ERRANDS_STORAGE: `${dir}/`,
    ...(database ? { ERRANDS_DATABASE: database } : {}),
    ERRANDS_LOG_LEVEL: "error",
  },
  stdout: "inherit",
  stderr: "inherit",
});

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return text;
}

try {
  for (let i = 0; ; i++) {
    if (
      await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 1000) throw new Error("the server never answered");
    await Bun.sleep(20);
  }

  // Fill: TYPES types; t0–t5 completed, t6 failed, t7 active, t8 scheduled, the rest waiting.
  const started = performance.now();
  const perType = Math.floor(N / TYPES);
  for (let t = 0; t < TYPES; t++) {
    const options = t === 8 ? { delay: 86_400_000 } : {};
    const batches: Promise<string>[] = [];
    for (let made = 0; made < perType; made += BATCH) {
      const errands = Array.from({ length: Math.min(BATCH, perType - made) }, (_, k) => ({
        name: `report ${t}-${made + k}`,
        type: `t${t}`,
        options,
        data: { customer: made + k },
      }));
      batches.push(call("POST", "/v1/errands/batch", { errands }));
      if (batches.length >= 4) await Promise.all(batches.splice(0));
    }
    await Promise.all(batches);
    const status = t <= 5 ? "completed" : t === 6 ? "failed" : t === 7 ? "active" : null;
    if (status) await call("POST", `/v1/errands/update/type/t${t}`, { status });
  }
  // Some completions and failures through workers, for the per-minute counts.
  const workers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; i < 500; i++) {
      const claimed = JSON.parse(await call("POST", `/v1/errands/process/t${9 + (w % 10)}`));
      const id = claimed.results.id;
      if (i % 10 === 0) await call("PUT", `/v1/errand/${id}/failed`, { reason: "bench" });
      else await call("PUT", `/v1/errand/${id}/completed`, { results: { ok: true } });
    }
  });
  await Promise.all(workers);
  const fillSeconds = (performance.now() - started) / 1000;
  console.log(`filled ${N.toLocaleString("en-US")} errands in ${fillSeconds.toFixed(0)} s`);
  // One sweep folds the counts in (PostgreSQL) and flushes the minute counts.
  await Bun.sleep(2500);

  const someId = JSON.parse(await call("GET", "/v1/errands?limit=1&status=failed")).results[0]?.id;
  const reads: Array<[string, string]> = [
    ["overview: types", "/v1/types"],
    ["overview: last hour", "/v1/types/history?minutes=60"],
    ["errands: first page", "/v1/errands?limit=50"],
    ["errands: status + type", "/v1/errands?status=failed&type=t6&limit=50"],
    ["errands: status, deep page", `/v1/errands?status=inactive&limit=50&after=${someId}`],
    ["errands: name prefix", "/v1/errands?name=report%2012-99&limit=50"],
    ["errand", `/v1/errand/${someId}`],
    ["scheduled", "/v1/errands/scheduled?limit=50"],
    ["pipelines", "/v1/pipelines?limit=50"],
  ];
  console.log(`\n| read (${N.toLocaleString("en-US")} errands) | p50 ms | p95 ms | max ms |`);
  console.log("|---|---|---|---|");
  for (const [label, path] of reads) {
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      await call("GET", path);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) =>
      (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(1);
    console.log(
      `| ${label} \`${path.replace(/after=[^&]+/, "after=…")}\` | ${at(0.5)} | ${at(0.95)} | ${at(1)} |`,
    );
  }
} finally {
  server.kill();
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
  if (admin && database) {
    await admin.unsafe(
      `DROP DATABASE IF EXISTS ${new URL(database).pathname.slice(1)} WITH (FORCE)`,
    );
    await admin.close();
  }
}
