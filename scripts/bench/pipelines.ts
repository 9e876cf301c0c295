// Pipeline cost: create and run a chain, a fan-out and a fan-in of 1,000 errands each through
// the real app (app.handle), one worker claiming and completing.
// Usage: bun scripts/bench/pipelines.ts [size=1000] [sync=normal|full]
//
// Per unblock: what completing an errand costs beyond completing an errand of no pipeline (the
// baseline, measured first on the same database), divided by the errands it unblocked. In the
// chain each completion unblocks one errand; in the fan-out the root's unblocks size − 1 at
// once; in the fan-in the last completion unblocks the one errand that waited on all the others.
// "Other completions" unblock nothing: in the fan-in each still checks the dependencies of the
// errand waiting on all of them, up to the first one not completed.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../src/app.ts";
import { systemClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { SqliteDriver as Store } from "../../src/store/sqlite/driver.ts";

const size = Number(process.argv[2] ?? 1000);
const sync = process.argv[3] ?? "normal";

type App = ReturnType<typeof createApp>["app"];
type Edge = { target: string; dependsOn: string };
const name = (i: number) => `e${i}`;
const edges = (n: number, edge: (i: number) => Edge) =>
  Array.from({ length: n - 1 }, (_, i) => edge(i));
const shapes: Record<string, () => Edge[]> = {
  chain: () => edges(size, (i) => ({ target: name(i + 1), dependsOn: name(i) })),
  "fan-out": () => edges(size, (i) => ({ target: name(i + 1), dependsOn: name(0) })),
  "fan-in": () => edges(size, (i) => ({ target: name(0), dependsOn: name(i + 1) })),
};

async function call(app: App, method: string, path: string, body?: unknown) {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  const res = await app.handle(new Request(`http://localhost${path}`, init));
  // biome-ignore lint/suspicious/noExplicitAny: a bench reads only a few fields
  const json = (await res.json()) as any;
  if (res.status !== 200 && res.status !== 404) throw new Error(`${method} ${path}: ${res.status}`);
  return { status: res.status, json };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Claims and completes every errand of `type`; each completion's µs and what it unblocked. */
async function drain(app: App, store: Store, type: string) {
  const queued = store.reader.prepare<{ n: number }, [string]>(
    "SELECT count(*) AS n FROM errands WHERE type = ? AND status = 'inactive'",
  );
  const completes: Array<{ us: number; unblocked: number }> = [];
  let inactive = queued.get(type)?.n ?? 0;
  for (;;) {
    const claimed = await call(app, "POST", `/v1/errands/process/${type}`);
    if (claimed.status === 404) return completes;
    const start = performance.now();
    await call(app, "PUT", `/v1/errand/${claimed.json.results.id}/completed`, {
      results: { ok: true },
    });
    const us = (performance.now() - start) * 1000;
    const now = queued.get(type)?.n ?? 0;
    completes.push({ us, unblocked: now - (inactive - 1) });
    inactive = now;
  }
}

console.log(`pipelines of ${size} errands, ERRANDS_SYNC=${sync}, one worker through app.handle`);
console.log(
  [
    "shape",
    "create ms",
    "run s",
    "baseline µs",
    "unblocking completions",
    "other completions µs",
    "per unblock µs",
  ].join("\t"),
);
for (const [shape, shapeEdges] of Object.entries(shapes)) {
  const dir = mkdtempSync(join(tmpdir(), "errands-bench-"));
  const config = loadConfig({ ERRANDS_STORAGE: `${dir}/`, ERRANDS_SYNC: sync });
  const store = new Store(config.storage, { sync: config.sync });
  const { app } = createApp({ driver: store, clock: systemClock, config });

  // The baseline: completing errands of no pipeline, as many as the pipeline holds.
  for (let i = 0; i < size; i++)
    await call(app, "POST", "/v1/errands/", { name: name(i), type: "plain" });
  const baseline = mean((await drain(app, store, "plain")).map((c) => c.us));

  const spec = {
    name: shape,
    errands: Array.from({ length: size }, (_, i) => ({
      name: name(i),
      type: "bench",
      data: { i },
    })),
    dependencies: shapeEdges(),
  };
  const createStart = performance.now();
  const created = await call(app, "POST", "/v1/pipeline/", spec);
  const createMs = performance.now() - createStart;

  const runStart = performance.now();
  const completes = await drain(app, store, "bench");
  const runS = (performance.now() - runStart) / 1000;
  const done = await call(app, "GET", `/v1/pipeline/${created.json.results.id}`);
  if (completes.length !== size || done.json.results.status !== "completed") {
    throw new Error(`${shape}: ran ${completes.length} of ${size}, ${done.json.results.status}`);
  }
  const unblocking = completes.filter((c) => c.unblocked > 0);
  const unblocks = unblocking.reduce((n, c) => n + c.unblocked, 0);
  const extra = unblocking.reduce((n, c) => n + c.us - baseline, 0);
  console.log(
    [
      shape,
      createMs.toFixed(0),
      runS.toFixed(2),
      baseline.toFixed(0),
      `${unblocking.length} × ${mean(unblocking.map((c) => c.us)).toFixed(0)} µs, ${unblocks} unblocked`,
      mean(completes.filter((c) => c.unblocked === 0).map((c) => c.us)).toFixed(0),
      (extra / Math.max(1, unblocks)).toFixed(0),
    ].join("\t"),
  );
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
