// The client and worker SDK (client/) against the real server on a socket: typed errors,
// retries and idempotency keys, the worker's batch claims, heartbeats, attempts, failures and
// close, the event iterator, a client method for every route, the generated types kept in step
// with the server, and the built package run under Node.

import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { frames } from "../client/src/events.ts";
import {
  BadRequestError,
  ConflictError,
  type Errand,
  ErrandsClient,
  ErrandsError,
  type Fetch,
  NetworkError,
  NotFoundError,
  type StreamEvent,
  UnauthorizedError,
} from "../client/src/index.ts";
import { CLIENT_TYPES, clientTypes } from "../scripts/client-types.ts";
import { appsPerTest, runCommand, type TestApp, tempDir } from "./harness.ts";
import { eventually } from "./sse.ts";

const app = appsPerTest();
const ROOT = join(import.meta.dir, "..");

/** An app listening on a port of 127.0.0.1, and its base URL. */
function serve(options: Parameters<typeof app>[0] = {}): { a: TestApp; url: string } {
  const a = app(options);
  a.app.listen({ hostname: "127.0.0.1", port: 0 });
  return { a, url: `http://127.0.0.1:${a.app.server?.port}` };
}

interface Sent {
  method: string;
  url: URL;
  body: Record<string, unknown> | undefined;
}

/** A fetch that records each request before sending it on, unchanged, to the server. */
function recording(): { fetch: Fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const fetch: Fetch = (url, init) => {
    const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
    sent.push({ method: init.method ?? "GET", url: new URL(url), body });
    return globalThis.fetch(url, init);
  };
  return { fetch, sent };
}

/** A fetch that keeps the text of every answer body as the client reads it. */
function tapping(): { fetch: Fetch; read: () => string } {
  let text = "";
  const fetch: Fetch = async (url, init) => {
    const response = await globalThis.fetch(url, init);
    if (response.body === null) return response;
    const decoder = new TextDecoder();
    const tap = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        text += decoder.decode(chunk, { stream: true });
        controller.enqueue(chunk);
      },
    });
    const { status, headers } = response;
    return new Response(response.body.pipeThrough(tap), { status, headers });
  };
  return { fetch, read: () => text };
}

/**
 * A TCP proxy in front of the server that can lose answers: `dropAnswerOf` picks a request
 * whose answer never reaches the client (the connection is cut once the server has answered),
 * `down` refuses connections, `cut()` breaks those open. It keeps each request's head, and
 * what the server sent through it.
 */
class LossyProxy {
  readonly heads: string[] = [];
  received = "";
  down = false;
  dropAnswerOf: ((head: string) => boolean) | null = null;
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  url = "";

  constructor(private readonly target: number) {}

  async start(): Promise<this> {
    const server = createServer((client) => this.connection(client));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    proxies.push(this);
    return this;
  }

  /** Breaks every open connection. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  close(): void {
    this.cut();
    this.server?.close();
  }

  private connection(client: Socket): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = netConnect(this.target, "127.0.0.1");
    let dropping = false;
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      if (/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(text)) {
        const head = text.split("\r\n\r\n")[0] ?? "";
        this.heads.push(head);
        if (this.dropAnswerOf?.(head)) {
          this.dropAnswerOf = null;
          dropping = true;
        }
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (dropping) {
        client.destroy();
        return;
      }
      this.received += chunk.toString("latin1");
      client.write(chunk);
    });
  }
}

const proxies: LossyProxy[] = [];
afterEach(() => {
  for (const proxy of proxies.splice(0)) proxy.close();
});

/** A promise and the function that settles it: a handler waits on it until the test says. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

async function statusOf(client: ErrandsClient, id = ""): Promise<string> {
  return (await client.get(id)).status;
}

describe("errors", () => {
  test("a refusal is thrown as the typed error of its status, with the envelope", async () => {
    const { url } = serve();
    const client = new ErrandsClient({ url });

    const missing = await client.get("nope").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toBeInstanceOf(ErrandsError);
    expect((missing as NotFoundError).status).toBe(404);
    expect((missing as NotFoundError).envelope).toEqual({
      message: "Errand not found",
      error: 'no errand has id "nope"',
    });

    const bad = await client.create({ name: "x", type: "" }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).status).toBe(400);
    expect((bad as BadRequestError).envelope.error).toContain("body.type");

    const queued = await client.create({ name: "queued", type: "t" });
    const conflict = await client.progress(queued.id, 10).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as ConflictError).status).toBe(409);
    expect((conflict as ConflictError).message).toContain("409");
  });

  test("without the token it is an UnauthorizedError; with it the call goes through", async () => {
    const { url } = serve({ env: { ERRANDS_TOKEN: "sesame" } });
    const refused = await new ErrandsClient({ url }).types().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnauthorizedError);
    expect((refused as UnauthorizedError).status).toBe(401);
    expect(await new ErrandsClient({ url, token: "sesame" }).types()).toEqual([]);
  });

  test("process answers null for No jobs, but a wrong address is still a NotFoundError", async () => {
    const { url } = serve();
    expect(await new ErrandsClient({ url }).process("none")).toBeNull();
    const wrong = await new ErrandsClient({ url: `${url}/elsewhere` })
      .process("none")
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(NotFoundError);
  });
});

describe("retries and idempotency keys", () => {
  test("a create sends an Idempotency-Key, a UUID unless given; the same key answers the same errand", async () => {
    const { url } = serve();
    const { fetch, sent } = recording();
    const headersOf: Headers[] = [];
    const client = new ErrandsClient({
      url,
      fetch: (u, init) => {
        headersOf.push(new Headers(init.headers));
        return fetch(u, init);
      },
    });
    await client.create({ name: "a", type: "keys" });
    expect(headersOf[0]?.get("idempotency-key")).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    const first = await client.create({ name: "b", type: "keys" }, { idempotencyKey: "k-1" });
    const again = await client.create({ name: "b", type: "keys" }, { idempotencyKey: "k-1" });
    expect(again.id).toBe(first.id);
    expect(headersOf[2]?.get("idempotency-key")).toBe("k-1");
    expect((await client.list({ type: "keys" })).map((e) => e.name)).toEqual(["a", "b"]);
    expect(sent.map((s) => s.method)).toEqual(["POST", "POST", "POST", "GET"]);
  });

  test("a create whose answer is lost is sent again with its key, and creates one errand", async () => {
    const { a, url } = serve();
    const proxy = await new LossyProxy(a.app.server?.port ?? 0).start();
    proxy.dropAnswerOf = (head) => head.startsWith("POST /v1/errands ");
    const client = new ErrandsClient({ url: proxy.url, baseDelayMs: 1 });

    const errand = await client.create({ name: "once", type: "lost" });

    const creates = proxy.heads.filter((head) => head.startsWith("POST /v1/errands "));
    expect(creates).toHaveLength(2);
    const keys = creates.map((head) => /^idempotency-key: (.+)$/im.exec(head)?.[1]);
    expect(keys[0]).toBeDefined();
    expect(keys[1]).toBe(keys[0]);
    const stored = await new ErrandsClient({ url }).list({ type: "lost" });
    expect(stored.map((e) => e.id)).toEqual([errand.id]);
  });

  test("a read is retried after a lost answer; a log line and a claim are not", async () => {
    const { a, url } = serve();
    const direct = new ErrandsClient({ url });
    const errand = await direct.create({ name: "r", type: "retries" });
    const proxy = await new LossyProxy(a.app.server?.port ?? 0).start();
    const client = new ErrandsClient({ url: proxy.url, baseDelayMs: 1 });

    proxy.dropAnswerOf = (head) => head.startsWith("GET /v1/errand/");
    expect((await client.get(errand.id)).id).toBe(errand.id);
    expect(proxy.heads.filter((h) => h.startsWith("GET /v1/errand/"))).toHaveLength(2);

    proxy.dropAnswerOf = (head) => head.startsWith("POST /v1/errands/claim/");
    const claim = await client.claim("retries").catch((e: unknown) => e);
    expect(claim).toBeInstanceOf(NetworkError);
    expect(proxy.heads.filter((h) => h.startsWith("POST /v1/errands/claim/"))).toHaveLength(1);
    // The server answered before the answer was lost: the errand stays claimed, once.
    expect(await direct.get(errand.id)).toMatchObject({ status: "active", attempts: 1 });

    proxy.dropAnswerOf = (head) => head.startsWith("POST /v1/errand/");
    const log = await client.log(errand.id, "INFO", "once").catch((e: unknown) => e);
    expect(log).toBeInstanceOf(NetworkError);
    const lines = (await direct.get(errand.id)).logs?.filter((l) => l.message === "once");
    expect(lines).toHaveLength(1);
  });
});

describe("worker", () => {
  test("processes every errand with its results, never more at once than its concurrency", async () => {
    const { url } = serve();
    const client = new ErrandsClient({ url });
    await client.createMany(
      Array.from({ length: 20 }, (_, n) => ({ name: `n${n}`, type: "many", data: { n } })),
    );
    let running = 0;
    let most = 0;
    const worker = client.worker({
      type: "many",
      concurrency: 4,
      wait: 1,
      handler: async ({ errand }) => {
        most = Math.max(most, ++running);
        await Bun.sleep(1);
        running--;
        return { square: (errand.data?.n as number) ** 2 };
      },
    });
    await eventually(
      async () => (await client.list({ type: "many", status: "completed" })).length === 20,
    );
    await worker.close();
    expect(most).toBeLessThanOrEqual(4);
    for (const errand of await client.list({ type: "many" })) {
      expect(errand.results).toEqual({ square: (errand.data?.n as number) ** 2 });
      expect(errand.attempts).toBe(1);
    }
  });

  test("claims in batches sized to its free slots, with a long poll", async () => {
    const { url } = serve();
    const { fetch, sent } = recording();
    const client = new ErrandsClient({ url, fetch });
    await client.createMany(
      Array.from({ length: 6 }, (_, n) => ({ name: `b${n}`, type: "batch" })),
    );
    const gates = new Map<string, () => void>();
    let running = 0;
    let openAll = false;
    /** Each claim's count, and the handlers running when it was asked. */
    const claims: Array<{ count: number; running: number; wait: string | null }> = [];
    const watched: Fetch = (u, init) => {
      const asked = new URL(u);
      if (asked.pathname.startsWith("/v1/errands/claim/")) {
        claims.push({
          count: Number(asked.searchParams.get("count")),
          running,
          wait: asked.searchParams.get("wait"),
        });
      }
      return fetch(u, init);
    };
    const worker = new ErrandsClient({ url, fetch: watched }).worker({
      type: "batch",
      concurrency: 4,
      wait: 5,
      handler: async ({ errand }) => {
        running++;
        const { opened, open } = gate();
        gates.set(errand.id, open);
        if (!openAll) await opened;
        running--;
      },
    });

    await eventually(() => gates.size === 4);
    expect(claims).toEqual([{ count: 4, running: 0, wait: "5" }]);
    [...gates.values()][0]?.();
    await eventually(() => gates.size === 5);
    expect(claims[1]).toEqual({ count: 1, running: 3, wait: "5" });
    openAll = true;
    for (const open of gates.values()) open();
    await eventually(
      async () => (await client.list({ type: "batch", status: "completed" })).length === 6,
    );
    await worker.close();
    for (const claim of claims) expect(claim.count).toBeLessThanOrEqual(4 - claim.running);
    expect(sent.filter((s) => s.url.pathname === "/v1/errands/ack").length).toBeGreaterThan(0);
  });

  test("heartbeats, each with the attempt, keep an errand alive while its handler outlasts options.heartbeat", async () => {
    const { a, url } = serve();
    const { fetch, sent } = recording();
    const client = new ErrandsClient({ url, fetch });
    const errand = await client.create({ name: "long", type: "beat", options: { heartbeat: 5 } });
    const { opened, open } = gate();
    const worker = client.worker({
      type: "beat",
      wait: 1,
      handler: async () => {
        await opened;
        return { outlived: true };
      },
    });
    await eventually(async () => (await statusOf(client, errand.id)) === "active");
    let deadline = (await client.get(errand.id)).heartbeatDeadline ?? 0;
    // 12 s of the server's time pass, over twice the heartbeat: the errand stays active.
    for (let round = 0; round < 3; round++) {
      a.clock.advance(4000);
      await a.sweep();
      expect(await statusOf(client, errand.id)).toBe("active");
      const before = deadline;
      await eventually(async () => {
        deadline = (await client.get(errand.id)).heartbeatDeadline ?? 0;
        return deadline > before;
      });
    }
    open();
    await eventually(async () => (await statusOf(client, errand.id)) === "completed");
    await worker.close();
    const done = await client.get(errand.id);
    expect(done.attempts).toBe(1);
    expect(done.results).toEqual({ outlived: true });
    const beats = sent.filter((s) => s.url.pathname.endsWith("/heartbeat"));
    expect(beats.length).toBeGreaterThanOrEqual(3);
    for (const beat of beats) expect(beat.body).toEqual({ attempt: 1 });
  });

  test("a thrown error fails the errand with its message and stack", async () => {
    const { url } = serve();
    const client = new ErrandsClient({ url });
    const errand = await client.create({ name: "bad", type: "throws" });
    let thrown: Error | undefined;
    const worker = client.worker({
      type: "throws",
      wait: 1,
      handler: () => {
        thrown = new Error("the file is gone");
        throw thrown;
      },
    });
    await eventually(async () => (await statusOf(client, errand.id)) === "failed");
    await worker.close();
    const reason = (await client.get(errand.id)).logs?.at(-1);
    expect(reason?.severity).toBe("ERROR");
    expect(reason?.message).toContain("the file is gone");
    expect(reason?.message).toBe(thrown?.stack ?? "");
    expect(reason?.message).toContain("\n    at ");
  });

  test("results that cannot be reported fail their errand alone; the others complete", async () => {
    const { url } = serve({ env: { ERRANDS_MAX_BODY: "4KiB" } });
    const { fetch, sent } = recording();
    const client = new ErrandsClient({ url, fetch });
    const [, big, odd, fine] = await client.createMany(
      ["first", "big", "odd", "fine"].map((name) => ({ name, type: "results", data: { name } })),
    );
    const first = gate();
    const rest = gate();
    let started = 0;
    const errors: unknown[] = [];
    const worker = client.worker({
      type: "results",
      concurrency: 4,
      wait: 1,
      onError: (error) => errors.push(error),
      handler: async ({ errand }) => {
        started++;
        await (errand.data?.name === "first" ? first.opened : rest.opened);
        if (errand.data?.name === "big") return { blob: "x".repeat(8000) };
        if (errand.data?.name === "odd") return [1, 2] as unknown as { n: number };
        return { n: 1 };
      },
    });
    await eventually(() => started === 4);
    // The first report goes at once; the three others wait for its answer and share an ack.
    first.open();
    rest.open();
    const settled = async (id = "") => ["completed", "failed"].includes(await statusOf(client, id));
    await eventually(async () =>
      (await Promise.all([big?.id, odd?.id, fine?.id].map(settled))).every(Boolean),
    );
    await worker.close();
    const last = async (id = "") => (await client.get(id)).logs?.at(-1)?.message ?? "";
    expect(await statusOf(client, big?.id)).toBe("failed");
    expect(await last(big?.id)).toContain("the results could not be reported");
    expect(await statusOf(client, odd?.id)).toBe("failed");
    expect(await last(odd?.id)).toContain("the handler answered [1,2], not an object");
    expect((await client.get(fine?.id ?? "")).results).toEqual({ n: 1 });
    const acks = sent.filter((s) => s.url.pathname === "/v1/errands/ack");
    // The shared ack refused whole (413), then each of its reports alone: big's refused too,
    // then sent again as a failure.
    const sizes = acks.map((ack) => (ack.body?.items as unknown[] | undefined)?.length);
    expect(sizes).toEqual([1, 3, 1, 1, 1, 1]);
    const tooLarge = errors.filter((e) => e instanceof ErrandsError && e.status === 413);
    expect(tooLarge).toHaveLength(1);
  });

  test("every report carries the attempt: a superseded worker changes nothing and is told", async () => {
    const { url } = serve();
    const { fetch, sent } = recording();
    const client = new ErrandsClient({ url, fetch });
    const errand = await client.create({ name: "lease", type: "lease" });
    const { opened, open } = gate();
    const errors: unknown[] = [];
    let progressRefused: unknown;
    let aborted = false;
    const worker = client.worker({
      type: "lease",
      wait: 1,
      onError: (error) => errors.push(error),
      handler: async ({ progress, log, signal }) => {
        await log("INFO", "working");
        await opened;
        progressRefused = await progress(50).catch((e: unknown) => e);
        aborted = signal.aborted;
        return { late: true };
      },
    });
    await eventually(async () => ((await client.get(errand.id)).logs?.length ?? 0) === 2);
    // An operator retries it and another worker claims it: attempt 2 is not this worker's.
    await client.retry(errand.id);
    const second = await client.process("lease");
    expect(second?.attempts).toBe(2);
    open();
    await eventually(() => errors.length > 0);
    await worker.close();

    expect(progressRefused).toBeInstanceOf(ConflictError);
    expect(aborted).toBe(true);
    expect(errors[0]).toBeInstanceOf(ConflictError);
    expect((errors[0] as ConflictError).envelope.message).toBe("Attempt superseded");
    const after = await client.get(errand.id);
    expect(after.status).toBe("active");
    expect(after.attempts).toBe(2);
    expect(after.results).toBeUndefined();
    const reports = sent.filter(
      (s) =>
        s.method !== "GET" &&
        (s.url.pathname.startsWith("/v1/errand/") || s.url.pathname === "/v1/errands/ack"),
    );
    const ours = reports.filter((s) => s.url.pathname !== `/v1/errand/${errand.id}/retry`);
    expect(ours.map((s) => s.url.pathname)).toEqual([
      `/v1/errand/${errand.id}/log`,
      `/v1/errand/${errand.id}`,
      "/v1/errands/ack",
    ]);
    expect(ours[0]?.body?.attempt).toBe(1);
    expect(ours[1]?.body?.attempt).toBe(1);
    expect(ours[2]?.body).toEqual({
      items: [{ id: errand.id, attempt: 1, completed: { results: { late: true } } }],
    });
  });

  test("close() stops claiming at once and resolves once the errands in hand are reported", async () => {
    const { a, url } = serve();
    const client = new ErrandsClient({ url });
    const [one, two] = await client.createMany([
      { name: "one", type: "close" },
      { name: "two", type: "close" },
    ]);
    const { opened, open } = gate();
    let started = 0;
    const worker = client.worker({
      type: "close",
      concurrency: 3,
      wait: 30,
      handler: async () => {
        started++;
        await opened;
      },
    });
    // Two running, and the long poll for the third slot waiting at the server.
    await eventually(() => started === 2 && a.waiters.count === 1);
    let closed = false;
    const closing = worker.close().then(() => {
      closed = true;
    });
    await eventually(() => a.waiters.count === 0);
    const late = await client.create({ name: "late", type: "close" });
    expect(closed).toBe(false);
    open();
    await closing;
    expect(await statusOf(client, one?.id ?? "")).toBe("completed");
    expect(await statusOf(client, two?.id ?? "")).toBe("completed");
    const untouched = await client.get(late.id);
    expect(untouched.status).toBe("inactive");
    expect(untouched.attempts).toBe(0);
    expect(worker.size).toBe(0);
  });

  test("a lost server is asked again, with backoff, until it is back", async () => {
    const { a, url } = serve();
    const proxy = await new LossyProxy(a.app.server?.port ?? 0).start();
    const errors: unknown[] = [];
    const worker = new ErrandsClient({ url: proxy.url }).worker({
      type: "lost",
      wait: 30,
      baseDelayMs: 5,
      maxDelayMs: 50,
      onError: (error) => errors.push(error),
      handler: () => ({ ok: true }),
    });
    await eventually(() => a.waiters.count === 1);
    proxy.down = true;
    proxy.cut();
    await eventually(() => errors.length >= 3);
    const direct = new ErrandsClient({ url });
    const errand = await direct.create({ name: "after", type: "lost" });
    proxy.down = false;
    await eventually(async () => (await statusOf(direct, errand.id)) === "completed");
    await worker.close();
    for (const error of errors) expect(error).toBeInstanceOf(NetworkError);
  });
});

describe("events", () => {
  /** Reads events until `count` came, then stops (closing the stream). */
  async function take(stream: AsyncGenerator<StreamEvent>, count: number): Promise<StreamEvent[]> {
    const got: StreamEvent[] = [];
    if (count === 0) return got;
    for await (const event of stream) {
      got.push(event);
      if (got.length === count) break;
    }
    return got;
  }

  const named = (events: StreamEvent[]) =>
    events.map((e) => ("errand" in e ? `${e.event} ${e.errand.name}` : e.event));

  test("the iterator filters by name and resumes after an id", async () => {
    const { a, url } = serve();
    const client = new ErrandsClient({ url });
    const first = take(client.events({ events: ["completed"], lastEventId: 0 }), 1);
    const e1 = await client.create({ name: "e1", type: "ev" });
    await client.create({ name: "e2", type: "ev" });
    const claimed = await client.process("ev");
    await client.complete(claimed?.id ?? "", { n: 1 });
    const [done] = await first;
    expect(done?.event).toBe("completed");
    if (done?.event !== "completed") throw new Error("not a completed event");
    expect(done.errand.id).toBe(e1.id);
    expect(done.errand.results).toEqual({ n: 1 });
    expect(typeof done.id).toBe("number");
    await eventually(() => a.streams.count === 0);

    // While no one listens: e2 is claimed and completed, e3 created.
    const next = await client.process("ev");
    await client.complete(next?.id ?? "");
    await client.create({ name: "e3", type: "ev" });
    const resumed = await take(
      client.events({ events: ["completed", "created"], lastEventId: done.id }),
      2,
    );
    expect(named(resumed)).toEqual(["completed e2", "created e3"]);
  });

  test("a dropped stream is reopened after the last id, and nothing in between is missed", async () => {
    const { a, url } = serve();
    const proxy = await new LossyProxy(a.app.server?.port ?? 0).start();
    const client = new ErrandsClient({ url: proxy.url, baseDelayMs: 5, maxDelayMs: 20 });
    const direct = new ErrandsClient({ url });
    await direct.create({ name: "before", type: "drop" });
    const [before] = await take(client.events({ events: ["created"], lastEventId: 0 }), 1);
    const after = before && "id" in before ? before.id : 0;

    const rest = take(client.events({ events: ["created"], lastEventId: after }), 2);
    // The second stream's answer has come through (each opens with its retry line).
    await eventually(() => proxy.received.split("retry: 3000").length === 3);
    proxy.down = true;
    proxy.cut();
    await direct.create({ name: "during", type: "drop" });
    proxy.down = false;
    await eventually(() => a.streams.count === 1);
    await direct.create({ name: "after", type: "drop" });
    expect(named(await rest)).toEqual(["created during", "created after"]);
    const reopened = proxy.heads.filter((h) => h.startsWith("GET /v1/errands/notifications"));
    expect(reopened.length).toBeGreaterThanOrEqual(3);
  });

  test("a stream opened without an id misses nothing across a drop before its first event", async () => {
    const { a, url } = serve();
    const proxy = await new LossyProxy(a.app.server?.port ?? 0).start();
    const { fetch, read } = tapping();
    const client = new ErrandsClient({ url: proxy.url, baseDelayMs: 5, maxDelayMs: 20, fetch });
    const direct = new ErrandsClient({ url });
    await direct.create({ name: "old", type: "fresh" });
    // On PostgreSQL an event has its place in the log a moment after its commit.
    await a.eventsHeard();
    const got = take(client.events({ events: ["created"] }), 1);
    // The client has read its first frame, which names the newest id.
    await eventually(() => read().includes("event: reset"));
    proxy.down = true;
    proxy.cut();
    await direct.create({ name: "meanwhile", type: "fresh" });
    proxy.down = false;
    expect(named(await got)).toEqual(["created meanwhile"]);
  });

  test("a resume id beyond the newest event yields a reset with the newest id", async () => {
    const { a, url } = serve();
    const client = new ErrandsClient({ url });
    await client.create({ name: "x", type: "reset" });
    await a.eventsHeard();
    const [reset] = await take(client.events({ lastEventId: 10 ** 12 }), 1);
    expect(reset).toEqual({ event: "reset", after: 10 ** 12, newest: 1 });
  });

  test("a refused stream throws its typed error", async () => {
    const { url } = serve();
    const refused = await take(
      new ErrandsClient({ url }).events({ events: ["nope" as "created"] }),
      1,
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BadRequestError);
  });

  test("frames are read however the bytes are cut, with CRLF, CR, comments and multi-line data", async () => {
    const text =
      ': hello\r\nid: 7\r\nevent: message\r\ndata: {"a":\r\ndata: 1}\r\n\r\nretry: 3000\n\nid: 8\rdata: x\r\r';
    for (const size of [1, 2, 3, 7, text.length]) {
      const bytes = new TextEncoder().encode(text);
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
          controller.close();
        },
      });
      const read = [];
      for await (const frame of frames(body)) read.push(frame);
      expect(read).toEqual([
        { id: "7", event: "message", data: '{"a":\n1}' },
        { id: "8", event: "message", data: "x" },
      ]);
    }
  });
});

describe("the package", () => {
  test("a client method for every route of the document", async () => {
    const { a, url } = serve();
    const { fetch, sent } = recording();
    const client = new ErrandsClient({ url, fetch });

    expect((await client.health()).status).toBe("OK");
    expect(await client.metrics()).toContain("errands_http_requests_total");
    const one = await client.create({ name: "one", type: "every" });
    const [two] = await client.createMany([{ name: "two", type: "every" }]);
    expect((await client.list()).length).toBe(2);
    expect((await client.listPage({ limit: 1 })).next).toBe(one.id);
    expect((await client.listBy("type", "every")).length).toBe(2);
    expect((await client.scheduled()).results).toEqual([]);
    expect(await client.get(one.id)).toMatchObject({ id: one.id, status: "inactive" });
    const claimed = (await client.process("every")) as Errand;
    await client.progress(claimed.id, 10, { attempt: 1 });
    await client.log(claimed.id, "INFO", "hello", { attempt: 1 });
    await client.heartbeat(claimed.id, { attempt: 1 });
    await client.fail(claimed.id, "no", { attempt: 1 });
    await client.retry(claimed.id);
    const [again] = await client.claim("every", { count: 1 });
    expect(
      (await client.ack([{ id: again?.id ?? "", attempt: 2, completed: {} }]))[0]?.status,
    ).toBe(200);
    const next = await client.completeAndClaim(two?.id ?? "", { n: 2 });
    expect(next.completed.status).toBe("completed");
    expect(await client.complete(two?.id ?? "", { n: 3 })).toMatchObject({ results: { n: 3 } });
    expect(await client.updateWhere("type", "every", { status: "inactive" })).toBe(2);
    expect((await client.retryMany({ ids: [one.id] })).skipped).toBe(1);
    a.clock.advance(60_000);
    await client.updateWhere("type", "every", { status: "completed" });
    a.clock.advance(60_000);
    expect((await client.clear("1s")).length).toBe(2);
    const gone = await client.create({ name: "gone", type: "every" });
    await client.delete(gone.id);
    expect((await client.deleteMany({ filter: { type: "every" } })).count).toBe(0);

    const spec = {
      name: "p",
      errands: [
        { name: "a", type: "pa" },
        { name: "b", type: "pb" },
      ],
      dependencies: [{ target: "b", dependsOn: "a" }],
    };
    await client.validatePipeline(spec);
    const pipeline = await client.createPipeline(spec);
    expect((await client.pipeline(pipeline.id)).errands?.length).toBe(2);
    expect((await client.pipelines()).map((p) => p.id)).toEqual([pipeline.id]);
    expect((await client.pipelinesPage({ limit: 1 })).results.length).toBe(1);
    await client.deletePipeline(pipeline.id);

    expect((await client.setType("every", { paused: true })).paused).toBe(true);
    expect((await client.types()).find((t) => t.type === "every")?.paused).toBe(true);
    expect((await client.typeHistory({ minutes: 2 })).length).toBe(2);

    const digest = { every: 60_000, errand: { name: "digest", type: "mail" } };
    expect((await client.putSchedule("digest", digest)).created).toBe(true);
    const replaced = await client.putSchedule("digest", { ...digest, paused: true });
    expect(replaced).toMatchObject({ created: false, schedule: { name: "digest", paused: true } });
    expect((await client.schedule("digest")).every).toBe(60_000);
    expect((await client.schedules()).map((s) => s.name)).toEqual(["digest"]);
    expect(await client.schedulesPage({ limit: 1 })).toMatchObject({ next: null });
    await client.deleteSchedule("digest");
    expect(await client.schedule("digest").catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
    const events = client.events({ lastEventId: 0 });
    expect((await events.next()).value).toMatchObject({ event: "created", id: 1 });
    await events.return();

    const doc = (await a.call("GET", "/swagger/json")).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => ({ method: method.toUpperCase(), path })),
    );
    const reached = (route: { method: string; path: string }) => {
      const pattern = new RegExp(`^${route.path.replace(/\{[^}]+\}/g, "[^/]+")}$`);
      return sent.some((s) => s.method === route.method && pattern.test(s.url.pathname));
    };
    // v1's older form of process (`?type=`) is the same claim as `process/:type`.
    const unreached = routes.filter((r) => !reached(r)).map((r) => `${r.method} ${r.path}`);
    expect(unreached).toEqual(["POST /v1/errands/process"]);
  });

  test("client/src/openapi.ts is what the server's document generates now", async () => {
    const checkedIn = readFileSync(CLIENT_TYPES, "utf8");
    // When this fails: bun scripts/client-types.ts, and commit the file.
    expect(await clientTypes()).toBe(checkedIn);
  });

  test("the built package runs a worker and reads events under Node", async () => {
    const built = await runCommand(["node", "node_modules/typescript/bin/tsc", "-p", "client"], {
      cwd: ROOT,
    });
    expect(built.stdout + built.stderr).toBe("");
    expect(built.code).toBe(0);
    const version = await runCommand(["node", "--version"]);
    expect(Number(/^v(\d+)/.exec(version.stdout)?.[1])).toBeGreaterThanOrEqual(20);

    const { url } = serve();
    const script = join(tempDir(), "worker.mjs");
    await Bun.write(
      script,
      `const { ErrandsClient, ConflictError } = await import(process.argv[2]);
const client = new ErrandsClient({ url: process.argv[3] });
const made = await client.createMany([1, 2, 3, 4, 5].map((n) => ({ name: "n" + n, type: "node", data: { n } })));
const worker = client.worker({
  type: "node",
  concurrency: 2,
  wait: 1,
  handler: async ({ errand, progress, log }) => {
    await progress(50);
    await log("INFO", "squaring " + errand.data.n);
    if (errand.data.n === 5) throw new Error("five is too many");
    return { square: errand.data.n ** 2 };
  },
});
const outcomes = {};
for await (const e of client.events({ events: ["completed", "failed"], lastEventId: 0 })) {
  outcomes[e.errand.name] = e.event === "completed" ? e.errand.results : e.event;
  if (Object.keys(outcomes).length === made.length) break;
}
await worker.close();
const refused = await client.progress(made[0].id, 1).catch((e) => e);
console.log(JSON.stringify({ node: process.version, outcomes, conflict: refused instanceof ConflictError }));
`,
    );
    const entry = pathToFileURL(join(ROOT, "client", "dist", "index.js")).href;
    const proc = Bun.spawn(["node", script, entry, url], { stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => proc.kill(), 30_000);
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    clearTimeout(killer);
    expect(stderr).toBe("");
    // It exited by itself once done: the worker and the stream left nothing running.
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { node: string; outcomes: unknown; conflict: boolean };
    expect(out.node).toMatch(/^v2\d\./);
    expect(out.outcomes).toEqual({
      n1: { square: 1 },
      n2: { square: 4 },
      n3: { square: 9 },
      n4: { square: 16 },
      n5: "failed",
    });
    expect(out.conflict).toBe(true);
  });
});
