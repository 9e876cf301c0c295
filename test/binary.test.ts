// The compiled executable over a real socket: built once by scripts/build.ts, copied alone into
// an empty directory, and run there as an operator would.

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { makeApp, removeTempDirs, runCommand, tempDir } from "./harness.ts";
import { freePort } from "./server-process.ts";

const ROOT = join(import.meta.dir, "..");
const ARTIFACTS = join(ROOT, "test-artifacts");
let binary = "";
const running = new Set<Bun.Subprocess>();

beforeAll(async () => {
  const out = tempDir();
  const build = Bun.spawn([process.execPath, "scripts/build.ts", "--only-main", "--outdir", out], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, stderr] = await Promise.all([build.exited, new Response(build.stderr).text()]);
  if (code !== 0) throw new Error(`build failed: ${stderr}`);
  binary = join(tempDir(), "errands-server");
  copyFileSync(join(out, "errands-server"), binary);
}, 120_000);

afterAll(() => {
  for (const proc of running) proc.kill(9);
  removeTempDirs();
});

/** Runs the binary to completion; its cwd is the empty directory it sits in. */
function run(args: string[], env: Record<string, string> = {}) {
  return runCommand([binary, ...args], {
    cwd: dirname(binary),
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
}

interface Server {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  base: string;
  storage: string;
  /** The JSON log lines written so far. */
  logs: Array<Record<string, unknown>>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

async function start(env: Record<string, string> = {}, storage = `${tempDir()}/`) {
  const port = await freePort();
  const proc = Bun.spawn([binary, "serve"], {
    cwd: dirname(binary),
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ERRANDS_PORT: `127.0.0.1:${port}`,
      ERRANDS_STORAGE: storage,
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(proc);
  const logs: Array<Record<string, unknown>> = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) logs.push(JSON.parse(line));
    }
  })();
  const server: Server = {
    proc,
    base: `http://127.0.0.1:${port}`,
    storage,
    logs,
    async stop(signal = "SIGTERM") {
      proc.kill(signal);
      const code = await proc.exited;
      await reading;
      running.delete(proc);
      return code;
    },
  };
  for (let i = 0; i < 500; i++) {
    const up = await fetch(`${server.base}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) return server;
    if (proc.exitCode !== null) break;
    await Bun.sleep(20);
  }
  proc.kill(9);
  throw new Error(`the server did not start: ${await new Response(proc.stderr).text()}`);
}

const json = (method: string, body?: unknown, headers: Record<string, string> = {}) => ({
  method,
  headers: { "content-type": "application/json", ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});

describe("sub-commands", () => {
  test("version prints the version of package.json", async () => {
    const result = await run(["version"]);
    expect(result).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("help names the sub-commands and every setting", async () => {
    const result = await run(["help"]);
    expect(result.code).toBe(0);
    for (const word of ["serve", "backup", "version", "ERRANDS_TOKEN", "--max-body"]) {
      expect(result.stdout).toContain(word);
    }
  });

  test("a bad setting stops start-up with one line on stderr and exit code 2", async () => {
    const result = await run(["serve", "--max-body", "lots"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("ERRANDS_MAX_BODY");
  });

  test("an unknown sub-command is refused with exit code 2", async () => {
    expect((await run(["frobnicate"])).code).toBe(2);
  });
});

describe("serving from an empty directory", () => {
  let server: Server;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server.stop();
  });

  test("nothing but the binary sits beside it, and it answers /health", async () => {
    expect(readdirSync(dirname(binary))).toEqual(["errands-server"]);
    const res = await fetch(`${server.base}/health`);
    expect(await res.json()).toEqual({ status: "OK", version: pkg.version });
    const started = server.logs.find((line) => line.msg === "started");
    expect(started).toMatchObject({ level: "info", version: pkg.version });
    expect(started?.storage).toBe(`${server.storage}errands.sqlite`);
  });

  test("creates, claims and completes an errand", async () => {
    const created = await fetch(
      `${server.base}/v1/errands/`,
      json("POST", { name: "n", type: "bin" }),
    );
    const id = ((await created.json()) as { results: { id: string } }).results.id;
    const claimed = await fetch(`${server.base}/v1/errands/process/bin`, { method: "POST" });
    expect(((await claimed.json()) as { results: { id: string } }).results.id).toBe(id);
    const done = await fetch(
      `${server.base}/v1/errand/${id}/completed`,
      json("PUT", { results: { rows: 3 } }),
    );
    const errand = ((await done.json()) as { results: Record<string, unknown> }).results;
    expect(errand).toMatchObject({ status: "completed", progress: 100, results: { rows: 3 } });
  });

  test("/swagger/json is OpenAPI 3 and lists every route of the app", async () => {
    const doc = (await (await fetch(`${server.base}/swagger/json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const app = makeApp();
    for (const route of app.app.routes) {
      if ((route.hooks as { detail?: { hide?: boolean } }).detail?.hide) continue;
      const path = route.path.replace(/:([^/]+)/g, "{$1}");
      expect(`${route.method} ${path} ${!!doc.paths[path]?.[route.method.toLowerCase()]}`).toBe(
        `${route.method} ${path} true`,
      );
    }
    app.close();
  });

  test("the dashboard and every file it links are served by the binary: nothing from elsewhere, under 250 KB of gzipped script", async () => {
    const res = await fetch(`${server.base}/`);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    const page = await res.text();
    expect(page).toContain('<div id="app"></div>');
    const links = [...page.matchAll(/(?:src|href)="([^"]+)"/g)]
      .map((m) => m[1] ?? "")
      .filter((link) => !link.startsWith("data:"));
    expect(links.some((link) => link.endsWith(".js"))).toBe(true);
    expect(links.some((link) => link.endsWith(".css"))).toBe(true);
    let script = 0;
    for (const link of links) {
      const url = new URL(link, `${server.base}/`);
      expect(url.origin).toBe(server.base);
      const file = await fetch(url);
      expect(`${link} ${file.status}`).toBe(`${link} 200`);
      const body = new Uint8Array(await file.arrayBuffer());
      const text = new TextDecoder().decode(body);
      // No font, image or script fetched from another host; XML namespaces are names, not loads.
      const away = [...text.matchAll(/https?:\/\/[^\s"'`)]+/g)]
        .map((m) => m[0])
        .filter((u) => !u.startsWith("http://www.w3.org/"));
      expect(`${link}: ${away.join(" ")}`).toBe(`${link}: `);
      if (link.endsWith(".js")) script += Bun.gzipSync(body).length;
    }
    expect(script).toBeGreaterThan(0);
    expect(script).toBeLessThan(250 * 1024);
  });

  test("/swagger and every asset it references are served by the binary, none from elsewhere", async () => {
    const page = await (await fetch(`${server.base}/swagger`)).text();
    expect(page).not.toMatch(/https?:\/\//);
    const links = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? "");
    expect(links.length).toBeGreaterThanOrEqual(3);
    for (const link of links) {
      const url = new URL(link, `${server.base}/swagger`);
      expect(url.origin).toBe(server.base);
      const res = await fetch(url);
      expect(`${link} ${res.status}`).toBe(`${link} 200`);
      const body = await res.text();
      if (link.endsWith(".css")) {
        // Stylesheets could pull fonts or images from elsewhere: every url() is inline data.
        const urls = [...body.matchAll(/url\(\s*["']?([^"')]+)/g)].map((m) => m[1] ?? "");
        expect(urls.filter((u) => !u.startsWith("data:"))).toEqual([]);
      }
    }
  });
});

const chromium = Bun.which("chromium");

describe.skipIf(chromium === null)("Swagger UI in Debian's headless chromium", () => {
  let server: Server;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server.stop();
  });

  /** Runs chromium on /swagger with every host but this one made unresolvable. */
  async function browse(extra: string[], url = `${server.base}/swagger`) {
    const proc = Bun.spawn(
      [
        chromium ?? "",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${tempDir()}`,
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,1600",
        "--virtual-time-budget=10000",
        ...extra,
        url,
      ],
      { stdout: "pipe", stderr: "ignore" },
    );
    const [code, stdout] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
    expect(code).toBe(0);
    return stdout;
  }

  test("renders every route, loading nothing from another host", async () => {
    const netLog = join(tempDir(), "net.json");
    const dom = await browse(["--dump-dom", `--log-net-log=${netLog}`]);
    const doc = (await (await fetch(`${server.base}/swagger/json`)).json()) as {
      paths: Record<string, unknown>;
    };
    const rendered = new Set([...dom.matchAll(/data-path="([^"]+)"/g)].map((m) => m[1]));
    expect([...Object.keys(doc.paths)].filter((path) => !rendered.has(path))).toEqual([]);

    // Every request the page made (keyed by its site; the browser's own are not) went here.
    const log = JSON.parse(readFileSync(netLog, "utf8")) as {
      constants: { logEventTypes: Record<string, number> };
      events: Array<{ type: number; params?: { url?: string; network_isolation_key?: string } }>;
    };
    const start = log.constants.logEventTypes.URL_REQUEST_START_JOB;
    const pageRequests = log.events
      .filter((e) => e.type === start && e.params?.network_isolation_key?.includes("127.0.0.1"))
      .map((e) => e.params?.url ?? "");
    expect(pageRequests).toContain(`${server.base}/swagger/assets/swagger-ui-bundle.js`);
    expect(pageRequests).toContain(`${server.base}/swagger/json`);
    expect(pageRequests.filter((url) => !url.startsWith(`${server.base}/`))).toEqual([]);
  }, 60_000);

  test("with ERRANDS_TOKEN set, opened with ?token=, it loads and renders every route", async () => {
    const guarded = await start({ ERRANDS_TOKEN: "ui-token" });
    try {
      expect((await fetch(`${guarded.base}/swagger`)).status).toBe(401);
      const dom = await browse(["--dump-dom"], `${guarded.base}/swagger?token=ui-token`);
      const doc = (await (
        await fetch(`${guarded.base}/swagger/json`, {
          headers: { authorization: "Bearer ui-token" },
        })
      ).json()) as { paths: Record<string, unknown> };
      const rendered = new Set([...dom.matchAll(/data-path="([^"]+)"/g)].map((m) => m[1]));
      expect(Object.keys(doc.paths).length).toBeGreaterThan(15);
      expect([...Object.keys(doc.paths)].filter((path) => !rendered.has(path))).toEqual([]);
    } finally {
      await guarded.stop();
    }
  }, 60_000);

  test("takes a screenshot of the page as a test artifact", async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "swagger-ui.png");
    await browse([`--screenshot=${shot}`]);
    expect(statSync(shot).size).toBeGreaterThan(20_000);
  }, 60_000);
});

describe("concurrent claims over the socket", () => {
  test("64 workers on their own connections, while producers create: each errand handed out once, none lost", async () => {
    const server = await start();
    const N = 2000;
    const created: string[] = [];
    const handed: string[] = [];
    const unexpected: string[] = [];
    let producing = true;
    const send = async (path: string, init: RequestInit) => {
      const res = await fetch(`${server.base}${path}`, init);
      const body = (await res.json()) as {
        results?: { id: string; attempts: number };
        next?: { id: string } | null;
      };
      if (res.status !== 200 && res.status !== 404) {
        unexpected.push(`${init.method} ${path}: ${res.status} ${JSON.stringify(body)}`);
      }
      return { status: res.status, body };
    };
    const producer = async (first: number) => {
      for (let i = first; i < N; i += 8) {
        const answer = await send("/v1/errands", json("POST", { name: `e${i}`, type: "race" }));
        if (answer.body.results) created.push(answer.body.results.id);
      }
    };
    // Plain and long-poll claims, plain completions and completions that claim the next one.
    const worker = async (n: number) => {
      const claimPath =
        n % 2 === 0 ? "/v1/errands/process/race" : "/v1/errands/process/race?wait=1";
      const chain = n % 4 < 2;
      let id: string | null = null;
      for (;;) {
        if (id === null) {
          // A claim sent once every create was answered that finds nothing means the queue is empty.
          const last = !producing;
          const claim = await send(claimPath, { method: "POST" });
          if (claim.status === 404) {
            if (last) return;
            continue;
          }
          id = claim.body.results?.id ?? null;
          if (id === null) return;
          handed.push(id);
        }
        const done = await send(`/v1/errand/${id}/completed${chain ? "?next=true" : ""}`, {
          method: "PUT",
        });
        id = done.body.next?.id ?? null;
        if (id !== null) handed.push(id);
      }
    };
    const producers = Array.from({ length: 8 }, (_, i) => producer(i));
    const workers = Array.from({ length: 64 }, (_, n) => worker(n));
    await Promise.all(producers);
    producing = false;
    await Promise.all(workers);

    expect(unexpected).toEqual([]);
    expect(new Set(created).size).toBe(N);
    expect(handed).toHaveLength(N); // handed out exactly once each…
    expect(new Set(handed)).toEqual(new Set(created)); // …and every one of them
    const stored = (await (await fetch(`${server.base}/v1/errands/list/type/race`)).json()) as {
      results: Array<{ status: string; attempts: number }>;
    };
    const shapes = new Set(stored.results.map((e) => `${e.status}/${e.attempts}`));
    expect([stored.results.length, [...shapes]]).toEqual([N, ["completed/1"]]);
    expect(await server.stop()).toBe(0);
  }, 60_000);
});

describe("backup while a writer runs", () => {
  test("the copy opens and passes integrity_check, with every errand acknowledged before it", async () => {
    const server = await start();
    let acknowledged = 0;
    let writing = true;
    const writer = async () => {
      while (writing) {
        const res = await fetch(
          `${server.base}/v1/errands`,
          json("POST", { name: "w", type: "bk" }),
        );
        if (res.status === 200) acknowledged++;
        await res.arrayBuffer();
      }
    };
    const writers = [writer(), writer(), writer(), writer()];
    while (acknowledged < 200) await Bun.sleep(10);
    const before = acknowledged;
    const copy = join(tempDir(), "copy.sqlite");
    const result = await run(["backup", "--storage", server.storage, copy]);
    writing = false;
    await Promise.all(writers);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(copy);

    const db = new Database(copy, { readonly: true });
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    const count = db.query<{ n: number }, []>("SELECT count(*) AS n FROM errands").get()?.n ?? 0;
    db.close();
    expect(count).toBeGreaterThanOrEqual(before);
    expect(count).toBeLessThanOrEqual(acknowledged);

    const again = await run(["backup", "--storage", server.storage, copy]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already exists");
    expect(await server.stop()).toBe(0);
  }, 60_000);
});

describe("shutdown", () => {
  test("SIGTERM ends streams and long polls, exits 0, and the data is intact after a restart", async () => {
    const server = await start();
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(
        `${server.base}/v1/errands`,
        json("POST", { name: `s${i}`, type: "keep" }),
      );
      ids.push(((await res.json()) as { results: { id: string } }).results.id);
    }
    const stream = await fetch(`${server.base}/v1/errands/notifications`);
    expect(stream.status).toBe(200);
    const streamDone = stream.text();
    const longPoll = fetch(`${server.base}/v1/errands/process/nothing?wait=60`, { method: "POST" });
    // Signals once the server holds both: the stream open and the claim waiting.
    const held = async () => {
      const text = await (await fetch(`${server.base}/metrics`)).text();
      return /^errands_sse_clients 1$/m.test(text) && /^errands_long_poll_waiters 1$/m.test(text);
    };
    while (!(await held())) await Bun.sleep(10);

    expect(await server.stop("SIGTERM")).toBe(0);
    await streamDone;
    expect((await longPoll).status).toBe(404);
    const messages = server.logs.map((line) => line.msg);
    expect(messages).toContain("stopping");
    expect(messages).toContain("stopped");

    const db = new Database(`${server.storage}errands.sqlite`, { readonly: true });
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    db.close();

    const again = await start({}, server.storage);
    const list = (await (await fetch(`${again.base}/v1/errands/list/type/keep`)).json()) as {
      results: Array<{ id: string }>;
    };
    expect(list.results.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(await again.stop("SIGINT")).toBe(0);
  }, 60_000);
});

describe("shutdown under load", () => {
  test("SIGTERM amid creates: every create answered is 200 and kept, and the exit is 0", async () => {
    const server = await start();
    const answered: Array<{ status: number; id?: string }> = [];
    const client = async () => {
      for (;;) {
        let res: Response;
        try {
          res = await fetch(`${server.base}/v1/errands`, json("POST", { name: "c", type: "term" }));
        } catch {
          return; // refused or cut: the server is gone, nothing was acknowledged
        }
        const body = (await res.json().catch(() => ({}))) as { results?: { id: string } };
        answered.push({ status: res.status, id: body.results?.id });
      }
    };
    const clients = Array.from({ length: 16 }, client);
    while (answered.length < 300) await Bun.sleep(5);
    const code = await server.stop("SIGTERM");
    await Promise.all(clients);
    expect(code).toBe(0);
    expect(answered.filter((a) => a.status !== 200)).toEqual([]);

    const again = await start({}, server.storage);
    const kept = (await (await fetch(`${again.base}/v1/errands/list/type/term`)).json()) as {
      results: Array<{ id: string }>;
    };
    const ids = new Set(kept.results.map((e) => e.id));
    expect(answered.filter((a) => !ids.has(a.id ?? ""))).toEqual([]);
    expect(await again.stop()).toBe(0);
  }, 60_000);
});

describe("over the socket", () => {
  let server: Server;
  const origin = "https://ui.example.com";
  beforeAll(async () => {
    server = await start({ ERRANDS_TOKEN: "tok-1,tok-2", ERRANDS_MAX_BODY: "4KiB" });
  });
  afterAll(async () => {
    await server.stop();
  });

  test("a token is needed on the API, not on /health; the event stream takes ?token=", async () => {
    expect((await fetch(`${server.base}/health`)).status).toBe(200);
    const refused = await fetch(`${server.base}/v1/errands`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { message: string }).message).toBe("Unauthorized");
    const allowed = await fetch(`${server.base}/v1/errands`, {
      headers: { authorization: "Bearer tok-2" },
    });
    expect(allowed.status).toBe(200);
    const controller = new AbortController();
    const stream = await fetch(`${server.base}/v1/errands/notifications?token=tok-1`, {
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    controller.abort();
  });

  test("a CORS preflight allows DELETE from any origin", async () => {
    const res = await fetch(`${server.base}/v1/errand/abc`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "DELETE" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("access-control-allow-methods")).toContain("DELETE");
  });

  test("a body over ERRANDS_MAX_BODY gets 413 with the error envelope, sized or streamed", async () => {
    const auth = { authorization: "Bearer tok-1" };
    const big = JSON.stringify({ name: "x".repeat(8192), type: "big" });
    const sized = await fetch(`${server.base}/v1/errands`, json("POST", undefined, auth));
    expect(sized.status).toBe(400); // no body at all: a validation error, not a size one
    const tooBig = await fetch(`${server.base}/v1/errands`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: big,
    });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { message: string }).message).toBe("Body too large");
    const streamed = await fetch(`${server.base}/v1/errands`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: new Blob([big]).stream(),
    });
    expect(streamed.status).toBe(413);
  });

  test("the storage is a single SQLite file in the given directory", () => {
    expect(existsSync(`${server.storage}errands.sqlite`)).toBe(true);
  });
});
