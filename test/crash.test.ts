// kill -9 in the middle of a load: every write that was answered 2xx is still there.

import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { removeTempDirs, tempDir } from "./harness.ts";
import { startServer } from "./server-process.ts";

afterAll(removeTempDirs);

/** The server on the SQLite file in `dir`, as its own process. */
const startOn = (dir: string, sync: string) =>
  startServer({ ERRANDS_STORAGE: `${dir}/`, ERRANDS_SYNC: sync });

const post = (url: string, body?: unknown, method = "POST") =>
  fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

// ERRANDS_SYNC=normal skips the fsync, which only a power loss needs: a killed process still
// loses nothing acknowledged.
test.each(["full", "normal"])(
  "ERRANDS_SYNC=%s: kill -9 mid-load, three times: every acknowledged create and completion survives",
  async (sync) => {
    const dir = tempDir();
    const created = new Set<string>();
    const completed = new Set<string>();

    for (let round = 0; round < 3; round++) {
      const server = await startOn(dir, sync);
      const { base } = server;
      let stop = false;
      const producer = async () => {
        for (let i = 0; !stop && i < 5000; i++) {
          try {
            const res = await post(`${base}/v1/errands/`, {
              name: `r${round}-${i}`,
              type: "crash",
            });
            if (res.ok) created.add(((await res.json()) as { results: { id: string } }).results.id);
          } catch {
            return; // the server is gone
          }
        }
      };
      const worker = async () => {
        for (let i = 0; !stop && i < 5000; i++) {
          try {
            const claim = await post(`${base}/v1/errands/process/crash`);
            if (!claim.ok) continue;
            const { id } = ((await claim.json()) as { results: { id: string } }).results;
            const done = await post(
              `${base}/v1/errand/${id}/completed`,
              { results: { round } },
              "PUT",
            );
            if (done.ok) completed.add(id);
          } catch {
            return;
          }
        }
      };
      const load = [...Array.from({ length: 8 }, producer), ...Array.from({ length: 8 }, worker)];
      // Let the load build up, then kill the process without warning.
      const target = created.size + 200;
      for (let i = 0; i < 1000 && created.size < target; i++) await Bun.sleep(5);
      await server.stop("SIGKILL");
      stop = true;
      await Promise.all(load);
    }

    const server = await startOn(dir, sync);
    const { base } = server;
    try {
      expect(created.size).toBeGreaterThan(0);
      for (const id of created) {
        const res = await fetch(`${base}/v1/errand/${id}`);
        expect(res.status).toBe(200);
        const errand = ((await res.json()) as { results: { status: string } }).results;
        if (completed.has(id)) expect(errand.status).toBe("completed");
      }
    } finally {
      await server.stop("SIGTERM");
    }
    const db = new Database(`${dir}/errands.sqlite`, { readonly: true });
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    db.close();
  },
  120_000,
);
