// The errand lifecycle against a running server: create rate, claim+complete rate and the
// round trip (producers and workers at once); the same round trip on BullMQ with Redis, once
// with appendfsync always and once by default; and the raw Bun.serve ceiling with the same
// HTTP client. With --scale N, also N errands stored: claim latency, RSS, size, list time.
// Workers also claim and ack in batches of --batch errands (POST /v1/errands/claim, /ack).
//
// Usage: bun scripts/bench/lifecycle.ts [--n 20000] [--c 32] [--runs 3] [--sync full|normal]
//        [--batch 32] [--scale 1000000] [--skip-bullmq] [--database postgres://… [--instances 3]]
// With --database, the server runs on PostgreSQL (a database of its own, made and dropped
// here), as --instances processes that the client spreads its connections over.
// BullMQ and the SDK path run on Node (scripts/bench/bullmq.mjs, sdk.mjs). Needs redis-server
// on the PATH for the BullMQ part (Debian: apt-get install redis-server).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFlags } from "../../src/config.ts";

const { flags } = parseFlags(
  process.argv.slice(2).map((a) => (a === "--skip-bullmq" ? "--skip-bullmq=1" : a)),
);
const N = Number(flags.get("n") ?? 20_000);
const C = Number(flags.get("c") ?? 32);
const RUNS = Number(flags.get("runs") ?? 3);
const SYNC = flags.get("sync") ?? "full";
const SCALE = Number(flags.get("scale") ?? 0);
const SKIP_BULLMQ = flags.has("skip-bullmq");
const DATABASE = flags.get("database") ?? null;
const INSTANCES = Number(flags.get("instances") ?? 1);
const BATCH = Number(flags.get("batch") ?? 32);
const YARDSTICK_DEFAULT = join(import.meta.dir, "../../../shared/bench/minimal-queue.ts");
const YARDSTICK =
  flags.get("yardstick") ?? (existsSync(YARDSTICK_DEFAULT) ? YARDSTICK_DEFAULT : "none");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port ?? 0;
  await probe.stop(true);
  return port;
}

async function waitUp(url: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (
      await fetch(url).then(
        (r) => r.status < 500,
        () => false,
      )
    )
      return;
    await Bun.sleep(10);
  }
  throw new Error(`${url} never answered`);
}

/** Runs `workers` loops of `step` until `total` steps are taken; answers seconds taken. */
async function pool(total: number, workers: number, step: (i: number) => Promise<boolean>) {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < total) {
        const i = next++;
        if (!(await step(i))) next--; // nothing done: try again
      }
    }),
  );
  return (performance.now() - start) / 1000;
}

const json = { "content-type": "application/json" };
const post = (url: string, body?: unknown, method = "POST") =>
  fetch(url, {
    method,
    headers: json,
    body: body === undefined ? undefined : JSON.stringify(body),
  });

let databases = 0;

/**
 * The server under test: one process on SQLite in `dir`, or with --database INSTANCES
 * processes on a PostgreSQL database of their own. `at(i)` spreads requests over them.
 */
async function startErrands(dir: string) {
  let database: string | null = null;
  let dropDatabase = async () => {};
  if (DATABASE !== null) {
    const name = `errands_bench_${process.pid}_${++databases}`;
    const admin = new Bun.SQL(DATABASE, { max: 1 });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await admin.close();
    const url = new URL(DATABASE);
    url.pathname = `/${name}`;
    database = url.toString();
    dropDatabase = async () => {
      const again = new Bun.SQL(DATABASE, { max: 1 });
      await again.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.close();
    };
  }
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  const bases: string[] = [];
  for (let i = 0; i < (database === null ? 1 : INSTANCES); i++) {
    const port = await freePort();
    const env: Record<string, string | undefined> = {
      ...process.env,
      ERRANDS_PORT: `127.0.0.1:${port}`,
      ERRANDS_STORAGE: `${dir}/`,
      ERRANDS_SYNC: SYNC,
      ERRANDS_LOG_LEVEL: "error",
    };
    if (database !== null) env.ERRANDS_DATABASE = database;
    procs.push(Bun.spawn([process.execPath, "src/main.ts"], { env, stdout: "ignore" }));
    bases.push(`http://127.0.0.1:${port}`);
    await waitUp(`${bases[i]}/v1/errands/?limit=1`);
  }
  const at = (i: number) => bases[i % bases.length] as string;
  const stop = async () => {
    for (const proc of procs) proc.kill("SIGTERM");
    await Promise.all(procs.map((proc) => proc.exited));
    await dropDatabase();
  };
  const pids = () => procs.map((proc) => proc.pid);
  return { proc: procs[0] as ReturnType<typeof Bun.spawn>, base: at(0), at, stop, database, pids };
}

async function claimComplete(base: string, type: string): Promise<boolean> {
  const claim = await post(`${base}/v1/errands/process/${type}`);
  if (claim.status !== 200) {
    await claim.arrayBuffer();
    return false;
  }
  const { id } = ((await claim.json()) as { results: { id: string } }).results;
  await (
    await post(`${base}/v1/errand/${id}/completed`, { results: { ok: true } }, "PUT")
  ).arrayBuffer();
  return true;
}

/** Creates N errands of `type` one request each over `connections`; answers seconds taken. */
const produce = (at: (i: number) => string, type: string, connections: number) =>
  pool(N, connections, async (i) => {
    await (await post(`${at(i)}/v1/errands/`, { name: `${type}-${i}`, type })).arrayBuffer();
    return true;
  });

/**
 * `workers` loops that claim up to BATCH errands of `type` at a time (waiting up to a second
 * for any) and complete them with one ack, until `total` are done; answers the seconds until
 * the last was acked (not counting the waits of the loops that found none left).
 */
async function batchWorkers(
  at: (i: number) => string,
  type: string,
  total: number,
  workers: number,
): Promise<number> {
  let done = 0;
  const start = performance.now();
  let end = start;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const base = at(w);
      while (done < total) {
        const claim = await post(`${base}/v1/errands/claim/${type}?count=${BATCH}&wait=1`);
        const claimed = (
          (await claim.json()) as { results: Array<{ id: string; attempts: number }> }
        ).results;
        if (claimed.length === 0) continue;
        const items = claimed.map((e) => ({
          id: e.id,
          attempt: e.attempts,
          completed: { results: { ok: true } },
        }));
        await (await post(`${base}/v1/errands/ack`, { items })).arrayBuffer();
        done += claimed.length;
        if (done >= total) end = performance.now();
      }
    }),
  );
  return (end - start) / 1000;
}

/** CPU seconds a process and its threads have used so far (utime + stime, from /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Create, claim + complete and the round trip on a server at `at`, with its CPU per request. */
async function singleRequests(at: (i: number) => string, pids: number[], run: number) {
  const type = `bench${run}`;
  const create =
    N /
    (await pool(N, C, async (i) => {
      await (
        await post(`${at(i)}/v1/errands/`, { name: `e${i}`, type, data: { i } })
      ).arrayBuffer();
      return true;
    }));
  const drain = N / (await pool(N, C, (i) => claimComplete(at(i), type)));
  // Round trip: half the connections produce, half claim and complete, at the same time.
  const rt = `rt${run}`;
  const cpuBefore = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const start = performance.now();
  await Promise.all([produce(at, rt, C / 2), pool(N, C / 2, (i) => claimComplete(at(i), rt))]);
  const round = N / ((performance.now() - start) / 1000);
  const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpuBefore;
  return { create, drain, round, cpuPerRequestUs: (cpu / (3 * N)) * 1e6 };
}

/** One run on the yardstick: a fresh database, the same client and phases as ours. */
async function yardstickRun(run: number) {
  const dir = mkdtempSync(join(tmpdir(), "errands-yardstick-"));
  const port = await freePort();
  const proc = Bun.spawn([process.execPath, YARDSTICK], {
    env: { ...process.env, PORT: String(port), DB: join(dir, "yardstick.sqlite") },
    stdout: "ignore",
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1000; i++) {
    const up = await fetch(`${base}/v1/errands/process/none`, { method: "POST" }).then(
      () => true,
      () => false,
    );
    if (up) break;
    await Bun.sleep(10);
  }
  const result = await singleRequests(() => base, [proc.pid], run);
  proc.kill();
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  return result;
}

async function ours() {
  const dir = mkdtempSync(join(tmpdir(), "errands-bench-"));
  const { at, stop, pids } = await startErrands(dir);
  const cpu: number[] = [];
  const yard: Array<Awaited<ReturnType<typeof yardstickRun>>> = [];
  const create: number[] = [];
  const drain: number[] = [];
  const round: number[] = [];
  const roundNext: number[] = [];
  const drainBatch: number[] = [];
  const roundBatch: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const single = await singleRequests(at, pids(), run);
    create.push(single.create);
    drain.push(single.drain);
    round.push(single.round);
    cpu.push(single.cpuPerRequestUs);
    // The yardstick, alternating run by run with ours, the same client.
    if (YARDSTICK !== "none") yard.push(await yardstickRun(run));

    // The same with complete?next=true: one request fewer per errand.
    const rn = `rn${run}`;
    const startNext = performance.now();
    let done = 0;
    await Promise.all([
      produce(at, rn, C / 2),
      ...Array.from({ length: C / 2 }, async (_, w) => {
        const base = at(w);
        let current: string | null = null;
        while (done < N) {
          if (current === null) {
            const claim = await post(`${base}/v1/errands/process/${rn}?wait=1`);
            if (claim.status !== 200) {
              await claim.arrayBuffer();
              continue;
            }
            current = ((await claim.json()) as { results: { id: string } }).results.id;
          }
          const res = await post(`${base}/v1/errand/${current}/completed?next=true`, {}, "PUT");
          const body = (await res.json()) as { next: { id: string } | null };
          done++;
          current = body.next?.id ?? null;
        }
      }),
    ]);
    roundNext.push(N / ((performance.now() - startNext) / 1000));

    // Batches: claim up to BATCH at once, ack them in one request.
    const bd = `bd${run}`;
    await produce(at, bd, C);
    drainBatch.push(N / (await batchWorkers(at, bd, N, C)));
    const rb = `rb${run}`;
    const [, seconds] = await Promise.all([produce(at, rb, C / 2), batchWorkers(at, rb, N, C / 2)]);
    roundBatch.push(N / seconds);
  }
  await stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    create: median(create),
    drain: median(drain),
    round: median(round),
    cpuPerRequestUs: median(cpu),
    yardstick:
      yard.length === 0
        ? null
        : {
            create: median(yard.map((y) => y.create)),
            drain: median(yard.map((y) => y.drain)),
            round: median(yard.map((y) => y.round)),
            cpuPerRequestUs: median(yard.map((y) => y.cpuPerRequestUs)),
          },
    roundNext: median(roundNext),
    drainBatch: median(drainBatch),
    roundBatch: median(roundBatch),
  };
}

/** Runs a bench script under Node and answers the number of its one JSON line. */
async function onNode(script: string, args: string[], key: string): Promise<number> {
  const proc = Bun.spawn(["node", join(import.meta.dir, script), ...args], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw new Error(`node ${script} exited with ${code}`);
  return Number(JSON.parse(text.trim().split("\n").at(-1) ?? "{}")[key]);
}

/**
 * BullMQ on Node (scripts/bench/bullmq.mjs), with Redis persisting every write
 * (appendfsync always) or by its defaults: one job per add (`single`), or addBulk by 100.
 */
async function bullmq(fsyncAlways: boolean, single: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "errands-redis-"));
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
  if (fsyncAlways) args.push("--appendonly", "yes", "--appendfsync", "always");
  const redis = Bun.spawn(["redis-server", ...args], { stdout: "ignore" });
  await Bun.sleep(300);
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const shape = single ? ["--single", "--producers", String(C / 2)] : [];
    rates.push(
      await onNode(
        "bullmq.mjs",
        ["--port", String(port), "--n", String(N), "--concurrency", String(C), ...shape],
        "jobsPerSecond",
      ),
    );
  }
  redis.kill("SIGTERM");
  await redis.exited;
  rmSync(dir, { recursive: true, force: true });
  return median(rates);
}

/** The SDK path on Node (scripts/bench/sdk.mjs, the client built first) against our server. */
async function sdkPath(): Promise<number> {
  const build = Bun.spawnSync(["npx", "tsc", "-p", join(import.meta.dir, "../../client")]);
  if (build.exitCode !== 0) throw new Error(`the client did not build: ${build.stderr}`);
  const dir = mkdtempSync(join(tmpdir(), "errands-sdk-"));
  const { base, stop } = await startErrands(dir);
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    rates.push(
      await onNode(
        "sdk.mjs",
        ["--url", base, "--n", String(N), "--concurrency", String(C), "--type", `sdk${run}`],
        "errandsPerSecond",
      ),
    );
  }
  await stop();
  rmSync(dir, { recursive: true, force: true });
  return median(rates);
}

async function ceiling(): Promise<number> {
  const port = await freePort();
  const proc = Bun.spawn(
    [
      process.execPath,
      "-e",
      `Bun.serve({ port: ${port}, hostname: "127.0.0.1", async fetch(r) { const text = await r.text(); return Response.json({ status: "OK", results: text ? JSON.parse(text) : null }); } })`,
    ],
    { stdout: "ignore" },
  );
  const url = `http://127.0.0.1:${port}/`;
  await waitUp(url);
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const t = await pool(N, C, async (i) => {
      await (await post(url, { name: `e${i}`, type: "t" })).arrayBuffer();
      return true;
    });
    rates.push(N / t);
  }
  proc.kill();
  await proc.exited;
  return median(rates);
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function claimLatency(base: string, type: string, count: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await (await post(`${base}/v1/errands/process/${type}`)).arrayBuffer();
    times.push((performance.now() - start) * 1000);
  }
  return median(times);
}

async function scale(total: number) {
  const dir = mkdtempSync(join(tmpdir(), "errands-scale-"));
  const { proc, base, stop, database } = await startErrands(dir);
  const batch = (n: number, type: string) =>
    post(`${base}/v1/errands/batch`, {
      errands: Array.from({ length: n }, (_, i) => ({ name: `s${i}`, type, data: { i } })),
    }).then((r) => r.arrayBuffer());
  await batch(1000, "small");
  const emptyLatency = await claimLatency(base, "small", 500);
  const fillStart = performance.now();
  await pool(total / 1000, 4, async () => {
    await batch(1000, "big");
    return true;
  });
  const fillSeconds = (performance.now() - fillStart) / 1000;
  const bigLatency = await claimLatency(base, "big", 500);
  const rssBeforeList = rssMiB(proc.pid);
  const listStart = performance.now();
  const listed = await fetch(`${base}/v1/errands/`).then((r) => r.arrayBuffer());
  const listSeconds = (performance.now() - listStart) / 1000;
  const rss = rssMiB(proc.pid);
  const bytes =
    database === null
      ? readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0)
      : await databaseBytes(database);
  await stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    emptyLatency,
    bigLatency,
    fillSeconds,
    listSeconds,
    listMiB: listed.byteLength / 2 ** 20,
    rssBeforeList,
    rss,
    dbMiB: bytes / 2 ** 20,
  };
}

async function databaseBytes(url: string): Promise<number> {
  const sql = new Bun.SQL(url, { max: 1 });
  const [row] = await sql`SELECT pg_database_size(current_database())::float8 AS bytes`;
  await sql.close();
  return Number(row.bytes);
}

console.log(
  DATABASE === null
    ? `lifecycle: N=${N} errands, ${C} connections, median of ${RUNS} runs, ERRANDS_SYNC=${SYNC}`
    : `lifecycle: N=${N} errands, ${C} connections, median of ${RUNS} runs, PostgreSQL, ${INSTANCES} instance(s)`,
);
const o = await ours();
console.log(`create                       ${fmt(o.create)} errands/s`);
console.log(`claim + complete             ${fmt(o.drain)} errands/s`);
console.log(
  `round trip                   ${fmt(o.round)} errands/s (${fmt(o.round * 3)} requests/s)`,
);
console.log(`server CPU per request       ${o.cpuPerRequestUs.toFixed(0)} µs (round trip)`);
console.log(`round trip, ?next=true       ${fmt(o.roundNext)} errands/s`);
console.log(`claim + ack, batches of ${BATCH}   ${fmt(o.drainBatch)} errands/s`);
console.log(`round trip, batches of ${BATCH}    ${fmt(o.roundBatch)} errands/s`);
if (o.yardstick) {
  const y = o.yardstick;
  console.log(
    `yardstick create             ${fmt(y.create)} errands/s (ours ÷ it ${(o.create / y.create).toFixed(2)})`,
  );
  console.log(
    `yardstick claim + complete   ${fmt(y.drain)} errands/s (ours ÷ it ${(o.drain / y.drain).toFixed(2)})`,
  );
  console.log(
    `yardstick round trip         ${fmt(y.round)} errands/s (ours ÷ it ${(o.round / y.round).toFixed(2)})`,
  );
  console.log(`yardstick CPU per request    ${y.cpuPerRequestUs.toFixed(0)} µs (round trip)`);
}
const top = await ceiling();
console.log(`raw Bun.serve ceiling        ${fmt(top)} requests/s`);
console.log(`ours ÷ ceiling (create)      ${(o.create / top).toFixed(2)}`);
console.log(`ours ÷ ceiling (round trip)  ${((o.round * 3) / top).toFixed(2)}`);
const sdk = await sdkPath();
console.log(`SDK path (Node; createMany by 100, worker c${C})  ${fmt(sdk)} errands/s`);
if (!SKIP_BULLMQ) {
  const always = await bullmq(true, false);
  const plain = await bullmq(false, false);
  const alwaysSingle = await bullmq(true, true);
  const plainSingle = await bullmq(false, true);
  console.log(`BullMQ addBulk, appendfsync always  ${fmt(always)} jobs/s`);
  console.log(`BullMQ addBulk, Redis default       ${fmt(plain)} jobs/s`);
  console.log(`BullMQ add, appendfsync always      ${fmt(alwaysSingle)} jobs/s`);
  console.log(`BullMQ add, Redis default           ${fmt(plainSingle)} jobs/s`);
  console.log(`SDK path ÷ BullMQ addBulk always    ${(sdk / always).toFixed(2)}`);
  console.log(`SDK path ÷ BullMQ addBulk default   ${(sdk / plain).toFixed(2)}`);
  console.log(
    `round trip ÷ BullMQ add always      ${(o.round / alwaysSingle).toFixed(2)} (next=true: ${(o.roundNext / alwaysSingle).toFixed(2)})`,
  );
}
if (SCALE > 0) {
  const s = await scale(SCALE);
  console.log(
    `scale: ${fmt(SCALE)} errands stored (batch create in ${s.fillSeconds.toFixed(1)} s)`,
  );
  console.log(`claim p50, 1k waiting        ${s.emptyLatency.toFixed(0)} µs`);
  console.log(`claim p50, ${fmt(SCALE)} waiting   ${s.bigLatency.toFixed(0)} µs`);
  console.log(`server RSS, stored           ${s.rssBeforeList.toFixed(0)} MiB`);
  console.log(`server RSS, after list all  ${s.rss.toFixed(0)} MiB`);
  console.log(`database size                ${s.dbMiB.toFixed(0)} MiB`);
  console.log(
    `list all                     ${s.listSeconds.toFixed(1)} s, ${s.listMiB.toFixed(0)} MiB streamed`,
  );
}
process.exit(0);
