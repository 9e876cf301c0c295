// The SDK path against a running errands server, on Node: producers create errands 100 at a
// time (createMany), --workers SDK workers (1 by default), each with concurrency 32, claim them
// in batches sized to their free slots and report them with ack. Prints one JSON line: {"errandsPerSecond": n}, counted from
// the first create to the last report answered (every errand done durably).
// Build the client first: npm run build:client.
//
// Usage: node scripts/bench/sdk.mjs --url http://127.0.0.1:5555 [--n 20000] [--bulk 100]
//        [--concurrency 32] [--workers 1] [--producers 4] [--type bench]

import { ErrandsClient } from "../../client/dist/index.js";

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const url = arg("url", "http://127.0.0.1:5555");
const N = Number(arg("n", "20000"));
const BULK = Number(arg("bulk", "100"));
const CONCURRENCY = Number(arg("concurrency", "32"));
const PRODUCERS = Number(arg("producers", "4"));
const WORKERS = Number(arg("workers", "1"));
const type = arg("type", `sdk-${process.pid}`);

const client = new ErrandsClient({ url });
let handled = 0;
let resolveAll;
const all = new Promise((resolve) => {
  resolveAll = resolve;
});
const start = performance.now();
const workers = Array.from({ length: WORKERS }, () =>
  client.worker({
    type,
    concurrency: CONCURRENCY,
    wait: 1,
    handler: async () => {
      if (++handled === N) resolveAll();
      return { ok: true };
    },
  }),
);
let next = 0;
await Promise.all(
  Array.from({ length: PRODUCERS }, async () => {
    while (next < N) {
      const from = next;
      const count = Math.min(BULK, N - from);
      next += count;
      await client.createMany(
        Array.from({ length: count }, (_, k) => ({
          name: `e${from + k}`,
          type,
          data: { i: from + k },
        })),
      );
    }
  }),
);
await all;
// close() resolves once every errand in hand is reported: all N are then done, durably.
await Promise.all(workers.map((worker) => worker.close()));
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ errandsPerSecond: N / seconds }));
