// BullMQ on Node, its main runtime, on its fastest documented path: producers add jobs with
// addBulk, 100 at a time; --workers Workers (1 by default), each with concurrency 32, process
// them. Prints one JSON line:
// {"jobsPerSecond": n}. Redis must be running at --port (scripts/bench/lifecycle.ts starts it,
// once with appendfsync always and once with Redis's defaults).
//
// Usage: node scripts/bench/bullmq.mjs --port 6390 [--n 20000] [--bulk 100] [--concurrency 32]
//        [--producers 4] [--workers 1] [--single]   (--single: queue.add one job per call instead)

import { Queue, Worker } from "bullmq";

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const port = Number(arg("port", "6379"));
const N = Number(arg("n", "20000"));
const BULK = Number(arg("bulk", "100"));
const CONCURRENCY = Number(arg("concurrency", "32"));
const PRODUCERS = Number(arg("producers", "4"));
const SINGLE = process.argv.includes("--single");
const WORKERS = Number(arg("workers", "1"));

const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
const name = `bench-${process.pid}`;
const queue = new Queue(name, { connection });
let done = 0;
let resolveAll;
const all = new Promise((resolve) => {
  resolveAll = resolve;
});
const start = performance.now();
const workers = Array.from({ length: WORKERS }, () => {
  const worker = new Worker(name, async () => ({ ok: true }), {
    connection,
    concurrency: CONCURRENCY,
  });
  worker.on("completed", () => {
    if (++done === N) resolveAll();
  });
  return worker;
});
let next = 0;
await Promise.all(
  Array.from({ length: PRODUCERS }, async () => {
    while (next < N) {
      const from = next;
      const count = SINGLE ? 1 : Math.min(BULK, N - from);
      next += count;
      if (SINGLE) await queue.add("e", { i: from });
      else {
        await queue.addBulk(
          Array.from({ length: count }, (_, k) => ({ name: "e", data: { i: from + k } })),
        );
      }
    }
  }),
);
await all;
const seconds = (performance.now() - start) / 1000;
await Promise.all(workers.map((worker) => worker.close()));
await queue.obliterate({ force: true });
await queue.close();
console.log(JSON.stringify({ jobsPerSecond: N / seconds }));
