// Wake-up latency of a long-poll claim (create → waiting worker answered), and events per
// second fanned out to many SSE clients, against a real server process.
// Usage: bun scripts/bench/events.ts [--wakeups 500] [--clients 100] [--events 2000]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFlags } from "../../src/config.ts";

const { flags } = parseFlags(process.argv.slice(2));
const WAKEUPS = Number(flags.get("wakeups") ?? 500);
const CLIENTS = Number(flags.get("clients") ?? 100);
const EVENTS = Number(flags.get("events") ?? 2000);

const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
const port = probe.port ?? 0;
await probe.stop(true);
const dir = mkdtempSync(join(tmpdir(), "errands-bench-"));
const server = Bun.spawn([process.execPath, "src/main.ts"], {
  env: {
    ...process.env,
    ERRANDS_PORT: `127.0.0.1:${port}`,
    ERRANDS_STORAGE: `${dir}/`,
    ERRANDS_LOG_LEVEL: "error",
  },
  stdout: "ignore",
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 500; i++) {
  if (
    await fetch(`${base}/v1/errands/?limit=1`).then(
      (r) => r.ok,
      () => false,
    )
  )
    break;
  await Bun.sleep(10);
}
const post = (path: string, body?: unknown) =>
  fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

// 1. Wake-up: a worker waits; a producer creates; time until the worker has its answer.
const wake: number[] = [];
for (let i = 0; i < WAKEUPS; i++) {
  const waiting = post("/v1/errands/process/wake?wait=10").then(async (r) => {
    await r.arrayBuffer();
    return performance.now();
  });
  await Bun.sleep(1); // let the claim reach the server and wait
  const start = performance.now();
  await (await post("/v1/errands/", { name: `w${i}`, type: "wake" })).arrayBuffer();
  wake.push((await waiting) - start);
}
wake.sort((a, b) => a - b);
const pct = (p: number) => (wake[Math.floor((p / 100) * (wake.length - 1))] ?? 0).toFixed(2);
console.log(`long-poll wake-up (create → waiter answered), ${WAKEUPS} runs`);
console.log(`  p50 ${pct(50)} ms   p99 ${pct(99)} ms   (includes the create's own commit)`);

// 2. Fan-out: CLIENTS streams; EVENTS creates; time until every client has every event.
const counts = new Array<number>(CLIENTS).fill(0);
const readers = await Promise.all(
  Array.from({ length: CLIENTS }, async (_, c) => {
    const res = await fetch(`${base}/v1/errands/notifications?events=created`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        counts[c] =
          (counts[c] ?? 0) + (decoder.decode(value).match(/event: message/g)?.length ?? 0);
      }
    })();
    return reader;
  }),
);
const start = performance.now();
let made = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (made < EVENTS) {
      made++;
      await (await post("/v1/errands/", { name: "fan", type: "fan" })).arrayBuffer();
    }
  }),
);
while (counts.some((n) => n < EVENTS)) await Bun.sleep(5);
const seconds = (performance.now() - start) / 1000;
console.log(`fan-out: ${EVENTS} events to ${CLIENTS} SSE clients in ${seconds.toFixed(2)} s`);
console.log(
  `  ${Math.round(EVENTS / seconds)} events/s in, ${Math.round((EVENTS * CLIENTS) / seconds)} frames/s out`,
);
for (const reader of readers) await reader.cancel();
server.kill("SIGTERM");
await server.exited;
rmSync(dir, { recursive: true, force: true });
process.exit(0);
