// The operations surface through app.handle: CORS, bearer tokens, the body limit, /health,
// /metrics, the OpenAPI document and the Swagger UI page (SPEC §8).

import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { IDLE_TYPE_MS } from "../src/ops/metrics.ts";
import {
  type Answer,
  makeApp,
  onPostgres,
  removeTempDirs,
  type TestApp,
  tempDir,
} from "./harness.ts";

afterAll(removeTempDirs);

const ORIGIN = "https://dashboard.example.com";

function expectEnvelope(answer: Answer, status: number) {
  expect(answer.status).toBe(status);
  expect(typeof answer.body.message).toBe("string");
  expect(typeof answer.body.error).toBe("string");
}

/** The metrics now. Those of errands are recorded as a change commits, before its answer. */
async function scrape(app: TestApp, headers: Record<string, string> = {}): Promise<string> {
  const answer = await app.call("GET", "/metrics", undefined, headers);
  expect(answer.status).toBe(200);
  return answer.body as string;
}

/**
 * Scrapes until `holds` is true of the metrics, for those recorded after an answer has gone
 * (Elysia's after-response hook) or a stream has closed; fails after 5 s with the last text.
 */
async function scrapeUntil(app: TestApp, holds: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const text = await scrape(app);
    if (holds(text)) return text;
    if (Date.now() > deadline) throw new Error(`the metrics never got there:\n${text}`);
    await Bun.sleep(2);
  }
}

/** The value of one sample line of a Prometheus text, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The errand_type values of a Prometheus text, as written (escaped). */
function typeLabels(text: string): Set<string> {
  return new Set([...text.matchAll(/errand_type="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? ""));
}

const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`;
const SAMPLE_LINE = new RegExp(
  String.raw`^[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{${LABEL}(?:,${LABEL})*\})? [-+0-9.eEInfNa]+$`,
);

/** Prometheus text format: comments, samples and blank lines, no raw control character. */
function expectValidExposition(text: string) {
  expect(text.endsWith("\n")).toBe(true);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them is the point
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    expect(line).toMatch(SAMPLE_LINE);
  }
}

describe("CORS", () => {
  test("by default any origin is echoed back with credentials allowed", async () => {
    const app = makeApp();
    const answer = await app.call("GET", "/v1/errands", undefined, { origin: ORIGIN });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(answer.headers.get("access-control-allow-credentials")).toBe("true");
    expect(answer.headers.get("vary")).toContain("Origin");
  });

  test("a preflight allows DELETE and the Authorization and Idempotency-Key headers", async () => {
    const app = makeApp({ env: { ERRANDS_TOKEN: "secret" } });
    const answer = await app.call("OPTIONS", "/v1/errand/some-id", undefined, {
      origin: ORIGIN,
      "access-control-request-method": "DELETE",
      "access-control-request-headers": "authorization, idempotency-key, content-type",
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(answer.headers.get("access-control-allow-credentials")).toBe("true");
    const methods = (answer.headers.get("access-control-allow-methods") ?? "").split(/,\s*/);
    for (const method of ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]) {
      expect(methods).toContain(method);
    }
    const headers = (answer.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const header of ["content-type", "authorization", "idempotency-key", "last-event-id"]) {
      expect(headers).toContain(header);
    }
  });

  test("ERRANDS_CORS_ORIGINS narrows the allowed origins to its list", async () => {
    const app = makeApp({ env: { ERRANDS_CORS_ORIGINS: `${ORIGIN}, https://ops.example.com` } });
    const allowed = await app.call("GET", "/v1/errands", undefined, { origin: ORIGIN });
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const other = await app.call("GET", "/v1/errands", undefined, {
      origin: "https://evil.example.net",
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await app.call("OPTIONS", "/v1/errands", undefined, {
      origin: "https://evil.example.net",
      "access-control-request-method": "POST",
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect(preflight.headers.get("access-control-allow-methods")).toBeNull();
  });

  test("error answers carry the CORS headers too, so a browser can read them", async () => {
    const app = makeApp({ env: { ERRANDS_TOKEN: "secret" } });
    const unauthorized = await app.call("GET", "/v1/errands", undefined, { origin: ORIGIN });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const missing = await app.call("GET", "/v1/errand/nope", undefined, {
      origin: ORIGIN,
      authorization: "Bearer secret",
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe(ORIGIN);
  });
});

describe("bearer tokens", () => {
  const env = { ERRANDS_TOKEN: "first-token, second-token" };

  test("without ERRANDS_TOKEN every route is open", async () => {
    const app = makeApp();
    expect((await app.call("GET", "/v1/errands")).status).toBe(200);
    expect((await app.call("GET", "/metrics")).status).toBe(200);
  });

  test("a request without a token is refused with 401 and the error envelope", async () => {
    const app = makeApp({ env });
    const answer = await app.call("GET", "/v1/errands");
    expectEnvelope(answer, 401);
    expect(answer.headers.get("www-authenticate")).toContain("Bearer");
  });

  test("a wrong token is refused, each token of the list is accepted", async () => {
    const app = makeApp({ env });
    const wrong = await app.call("GET", "/v1/errands", undefined, { authorization: "Bearer nope" });
    expectEnvelope(wrong, 401);
    const prefix = await app.call("GET", "/v1/errands", undefined, {
      authorization: "Bearer first-token-and-more",
    });
    expect(prefix.status).toBe(401);
    for (const token of ["first-token", "second-token"]) {
      const answer = await app.call("GET", "/v1/errands", undefined, {
        authorization: `Bearer ${token}`,
      });
      expect(answer.status).toBe(200);
    }
    const lower = await app.call("GET", "/v1/errands", undefined, {
      authorization: "bearer second-token",
    });
    expect(lower.status).toBe(200);
  });

  test("the token is checked before the body: no validation detail leaks to a stranger", async () => {
    const app = makeApp({ env });
    const answer = await app.call("POST", "/v1/errands", "{not json");
    expect(answer.status).toBe(401);
  });

  test("an unknown route answers 401 without a token, so routes cannot be probed", async () => {
    const app = makeApp({ env });
    expect((await app.call("GET", "/v1/secret-place")).status).toBe(401);
    const dotted = await app.call("GET", "/swagger/assets/../../v1/errands");
    expect([401, 404]).toContain(dotted.status);
  });

  test("only /health needs no token; Swagger UI, its files and document take it as ?token= too", async () => {
    const app = makeApp({ env });
    expect((await app.call("GET", "/health")).status).toBe(200);
    const paths = ["/swagger", "/swagger/", "/swagger/json", "/swagger/assets/swagger-ui.css"];
    for (const path of paths) {
      expect((await app.call("GET", path)).status).toBe(401);
      expect((await app.call("GET", `${path}?token=wrong`)).status).toBe(401);
      expect((await app.call("GET", `${path}?token=second-token`)).status).toBe(200);
      const bearer = { authorization: "Bearer first-token" };
      expect((await app.call("GET", path, undefined, bearer)).status).toBe(200);
    }
  });

  test("the Swagger UI page opened with ?token= links its files with it and sends it as a bearer", async () => {
    const app = makeApp({ env });
    const page = (await app.call("GET", "/swagger?token=second-token")).body as string;
    expect(page).toContain('src="swagger/assets/swagger-ui-bundle.js?token=second-token"');
    expect(page).toContain('href="swagger/assets/swagger-ui.css?token=second-token"');
    expect(page).toContain('const token = "second-token";');
    // A token is written into the page so that it cannot end the script element.
    const open = makeApp();
    const hostile = (await open.call("GET", "/swagger/?token=%3C%2Fscript%3E%3Cb%3E")).body;
    expect(hostile).not.toContain("</script><b>");
    expect(hostile).toContain('href="assets/swagger-ui.css?token=%3C%2Fscript%3E%3Cb%3E"');
  });

  test("/metrics needs the token unless ERRANDS_METRICS_PUBLIC=true", async () => {
    const closed = makeApp({ env });
    expect((await closed.call("GET", "/metrics")).status).toBe(401);
    const auth = { authorization: "Bearer first-token" };
    expect((await closed.call("GET", "/metrics", undefined, auth)).status).toBe(200);
    const open = makeApp({ env: { ...env, ERRANDS_METRICS_PUBLIC: "true" } });
    expect((await open.call("GET", "/metrics")).status).toBe(200);
    expect((await open.call("GET", "/v1/errands")).status).toBe(401);
  });

  test("the event stream also takes the token as ?token=, other routes do not", async () => {
    const app = makeApp({ env });
    const refused = await app.app.handle(
      new Request("http://localhost/v1/errands/notifications?token=wrong"),
    );
    expect(refused.status).toBe(401);
    const stream = await app.app.handle(
      new Request("http://localhost/v1/errands/notifications?token=second-token"),
    );
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    await stream.body?.cancel();
    const list = await app.call("GET", "/v1/errands?token=second-token");
    expect(list.status).toBe(401);
  });

  test("a preflight needs no token: browsers never send one with it", async () => {
    const app = makeApp({ env });
    const answer = await app.call("OPTIONS", "/v1/errands", undefined, {
      origin: ORIGIN,
      "access-control-request-method": "POST",
    });
    expect(answer.status).toBe(204);
  });
});

describe("body limit", () => {
  const env = { ERRANDS_MAX_BODY: "2KiB" };
  const padded = (bytes: number) => {
    const json = JSON.stringify({ name: "big", type: "limit" });
    return `${json.slice(0, -1)}${" ".repeat(bytes - json.length)}}`;
  };

  test("a body that declares more than ERRANDS_MAX_BODY is refused with 413", async () => {
    const app = makeApp({ env });
    const body = padded(4096);
    const answer = await app.call("POST", "/v1/errands", body, {
      "content-length": String(body.length),
    });
    expectEnvelope(answer, 413);
    expect(answer.body.error).toContain("2048");
  });

  test("a streamed body without Content-Length is cut off at the limit with 413", async () => {
    const app = makeApp({ env });
    const chunk = new TextEncoder().encode(" ".repeat(1000));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ === 0) controller.enqueue(new TextEncoder().encode('{"name":"a","type":"b"'));
        else if (sent < 10) controller.enqueue(chunk);
        else {
          controller.enqueue(new TextEncoder().encode("}"));
          controller.close();
        }
      },
    });
    const res = await app.app.handle(
      new Request("http://localhost/v1/errands", {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
      }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toBe("Body too large");
  });

  test("a body of exactly the limit is accepted", async () => {
    const app = makeApp({ env });
    const answer = await app.call("POST", "/v1/errands", padded(2048));
    expect(answer.status).toBe(200);
  });
});

describe("/health", () => {
  test("answers OK with the version after querying the database", async () => {
    const app = makeApp();
    const answer = await app.call("GET", "/health");
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: "OK", version: expect.any(String) });
  });

  test("answers 503 with the error envelope when the database cannot answer", async () => {
    const app = makeApp();
    app.close();
    expectEnvelope(await app.call("GET", "/health"), 503);
  });

  test("answers with a trailing slash too", async () => {
    const app = makeApp();
    expect((await app.call("GET", "/health/")).status).toBe(200);
  });

  // A failing fsync of SQLite's WAL; on PostgreSQL, test/scaleout.test.ts stops the server.
  test.skipIf(onPostgres)(
    "answers 503 while writes fail though reads still answer, and OK once they succeed",
    async () => {
      let failing = false;
      const app = makeApp({
        flush: async () => {
          if (failing) throw new Error("EIO: i/o error, fsync");
        },
      });
      expect((await app.call("GET", "/health")).status).toBe(200);
      failing = true;
      expect((await app.call("GET", "/v1/errands")).status).toBe(200);
      expect((await app.call("POST", "/v1/errands", { name: "a", type: "t" })).status).toBe(503);
      const sick = await app.call("GET", "/health");
      expectEnvelope(sick, 503);
      expect(sick.body.error).toContain("EIO");
      failing = false;
      expect((await app.call("GET", "/health")).status).toBe(200);
    },
  );
});

describe("/metrics", () => {
  async function claimed(app: TestApp, type: string, options: Record<string, unknown> = {}) {
    const created = await app.call("POST", "/v1/errands", { name: "m", type, options });
    expect(created.status).toBe(200);
    const claim = await app.call("POST", `/v1/errands/process/${type}`);
    expect(claim.status).toBe(200);
    return claim.body.results.id as string;
  }

  test("is Prometheus text", async () => {
    const app = makeApp();
    const answer = await app.call("GET", "/metrics");
    expect(answer.headers.get("content-type")).toContain("text/plain");
    expect(answer.body).toContain("# TYPE poly_errands_completed_total counter");
  });

  test("v1's completed counter counts completions, and failures only once out of retries", async () => {
    const app = makeApp();
    app.clock.advance(1000);
    const done = await claimed(app, "report");
    app.clock.advance(3000);
    expect((await app.call("PUT", `/v1/errand/${done}/completed`, {})).status).toBe(200);
    const retried = await claimed(app, "report", { retries: 1 });
    await app.call("PUT", `/v1/errand/${retried}/failed`, { reason: "flaky" });
    let text = await scrape(app);
    const completed = 'poly_errands_completed_total{errand_type="report",status="completed"}';
    const failed = 'poly_errands_completed_total{errand_type="report",status="failed"}';
    expect(sample(text, completed)).toBe(1);
    expect(sample(text, failed)).toBeUndefined();
    // The retry runs and fails again: out of retries now.
    expect((await app.call("POST", "/v1/errands/process/report")).status).toBe(200);
    await app.call("PUT", `/v1/errand/${retried}/failed`, { reason: "flaky" });
    text = await scrape(app);
    expect(sample(text, failed)).toBe(1);
    expect(sample(text, 'errands_run_seconds_count{errand_type="report",status="completed"}')).toBe(
      1,
    );
    expect(sample(text, 'errands_run_seconds_sum{errand_type="report",status="completed"}')).toBe(
      3,
    );
    expect(sample(text, 'errands_wait_seconds_count{errand_type="report"}')).toBe(2);
  });

  test("queue depth counts the stored errands by type and status", async () => {
    const app = makeApp();
    for (let i = 0; i < 3; i++) await app.call("POST", "/v1/errands", { name: "q", type: "mail" });
    await app.call("POST", "/v1/errands/process/mail");
    const text = await scrape(app);
    expect(sample(text, 'errands_queue_depth{errand_type="mail",status="inactive"}')).toBe(2);
    expect(sample(text, 'errands_queue_depth{errand_type="mail",status="active"}')).toBe(1);
  });

  test("a type's series go once none of its errands is stored and it has been idle 10 minutes", async () => {
    const app = makeApp();
    const gone = ["gone-1", "gone-2", "gone-3"];
    for (const type of gone) {
      const id = await claimed(app, type);
      app.clock.advance(1000);
      expect((await app.call("PUT", `/v1/errand/${id}/completed`, {})).status).toBe(200);
    }
    await app.call("POST", "/v1/errands", { name: "waits", type: "kept" });
    expect(typeLabels(await scrape(app))).toEqual(new Set([...gone, "kept"]));
    app.clock.advance(3_600_000);
    expect((await app.call("POST", "/v1/errands/clear/1m")).body.results).toHaveLength(3);
    // Shown a while longer, so that every scraper sees the last values.
    const completed = 'poly_errands_completed_total{errand_type="gone-1",status="completed"}';
    expect(sample(await scrape(app), completed)).toBe(1);
    app.clock.advance(IDLE_TYPE_MS);
    const text = await scrape(app);
    expect(typeLabels(text)).toEqual(new Set(["kept"]));
    expect(text).not.toContain('errand_type="gone-');
    expect(sample(text, 'errands_queue_depth{errand_type="kept",status="inactive"}')).toBe(1);
  });

  test("a type whose errands are deleted as they complete keeps counting while it is busy", async () => {
    const app = makeApp();
    const completed = 'poly_errands_completed_total{errand_type="mail",status="completed"}';
    for (const expected of [1, 2]) {
      const id = await claimed(app, "mail", { deleteOnCompleted: true });
      expect((await app.call("PUT", `/v1/errand/${id}/completed`, {})).status).toBe(200);
      expect((await app.call("GET", `/v1/errand/${id}`)).status).toBe(404);
      expect(sample(await scrape(app), completed)).toBe(expected);
      app.clock.advance(IDLE_TYPE_MS - 1);
    }
  });

  test('past ERRANDS_METRICS_MAX_TYPES further types share errand_type="_other"', async () => {
    const app = makeApp({ env: { ERRANDS_METRICS_MAX_TYPES: "3" } });
    for (let i = 0; i < 8; i++) {
      const id = await claimed(app, `kind-${i}`);
      expect((await app.call("PUT", `/v1/errand/${id}/completed`, {})).status).toBe(200);
      await app.call("POST", "/v1/errands", { name: "waits", type: `kind-${i}` });
    }
    let text = await scrape(app);
    expectValidExposition(text);
    expect(typeLabels(text)).toEqual(new Set(["kind-0", "kind-1", "kind-2", "_other"]));
    const completed = (type: string) =>
      sample(text, `poly_errands_completed_total{errand_type="${type}",status="completed"}`);
    const inactive = (type: string) =>
      sample(text, `errands_queue_depth{errand_type="${type}",status="inactive"}`);
    expect(completed("kind-0")).toBe(1);
    expect(completed("_other")).toBe(5);
    expect(inactive("_other")).toBe(5);
    expect(sample(text, 'errands_wait_seconds_count{errand_type="_other"}')).toBe(5);
    // A type that is gone leaves its place to a type still counted under _other.
    const deleted = await app.call("POST", "/v1/errands/update/type/kind-0", { delete: true });
    expect(deleted.body.count).toBe(2);
    app.clock.advance(IDLE_TYPE_MS);
    text = await scrape(app);
    expect(typeLabels(text)).toEqual(new Set(["kind-1", "kind-2", "kind-3", "_other"]));
    expect(inactive("kind-3")).toBe(1);
    expect(inactive("_other")).toBe(4);
  });

  // Types stored before the rule exist only in SQLite stores: the PostgreSQL engine came after it.
  test.skipIf(onPostgres)(
    "a stored type with control characters is claimed, and scraped escaped as valid text",
    async () => {
      const dir = tempDir();
      const before = makeApp({ dir });
      await before.call("POST", "/v1/errands", { name: "old", type: "legacy" });
      before.close();
      // Stored before such types were refused: written by hand, as no route takes them now.
      const odd = 'nul\u0000 cr\r nl\n tab\t quote" back\\';
      const db = new Database(`${dir}/errands.sqlite`);
      db.run("UPDATE errands SET type = ?1", [odd]);
      db.run("UPDATE type_counts SET type = ?1 WHERE type = 'legacy'", [odd]);
      db.close();
      const app = makeApp({ dir });
      const claim = await app.call("POST", `/v1/errands/process/${encodeURIComponent(odd)}`);
      expect(claim.status).toBe(200);
      expect(claim.body.results.type).toBe(odd);
      const id = claim.body.results.id;
      expect((await app.call("PUT", `/v1/errand/${id}/completed`, {})).status).toBe(200);
      const text = await scrape(app);
      expectValidExposition(text);
      const label = String.raw`nul\\x00 cr\\x0d nl\\x0a tab\\x09 quote\" back\\`;
      expect(typeLabels(text)).toEqual(new Set([label]));
      expect(
        sample(text, `poly_errands_completed_total{errand_type="${label}",status="completed"}`),
      ).toBe(1);
      expect(sample(text, `errands_queue_depth{errand_type="${label}",status="completed"}`)).toBe(
        1,
      );
      app.close();
    },
  );

  test("HTTP requests are counted by method, route template and status code", async () => {
    const app = makeApp();
    await app.call("GET", "/v1/errand/one");
    await app.call("GET", "/v1/errand/two");
    await app.call("GET", "/no/such/route");
    const routed = 'errands_http_requests_total{method="GET",route="/v1/errand/:id",code="404"}';
    const unrouted = 'errands_http_requests_total{method="GET",route="(unrouted)",code="404"}';
    // Once all three are counted, the split between the two routes must be exact.
    const text = await scrapeUntil(
      app,
      (t) => (sample(t, routed) ?? 0) + (sample(t, unrouted) ?? 0) >= 3,
    );
    expect(sample(text, routed)).toBe(2);
    expect(sample(text, unrouted)).toBe(1);
    expect(text).toContain("errands_http_request_duration_seconds_bucket{");
  });

  test("a method beyond those of the API (WebDAV's, say) is counted as other, keeping the series few", async () => {
    const app = makeApp();
    app.app.listen({ hostname: "127.0.0.1", port: 0 });
    const port = app.app.server?.port ?? 0;
    const methods = ["PROPFIND", "MKCOL", "LOCK", "UNLOCK", "SEARCH", "REPORT"];
    for (const method of methods) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1");
        socket.on("data", () => {});
        socket.on("error", reject);
        socket.on("close", () => resolve());
        socket.write(`${method} /v1/errands HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      });
    }
    const other = (t: string) =>
      [...t.matchAll(/^errands_http_requests_total\{method="other",[^}]*\} (\d+)$/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    const text = await scrapeUntil(app, (t) => other(t) >= methods.length);
    expect(other(text)).toBe(methods.length);
    for (const method of methods) expect(text).not.toContain(`method="${method}"`);
    await app.app.stop(true);
  });

  test("the SSE clients gauge follows the open event streams", async () => {
    const app = makeApp();
    const stream = await app.app.handle(new Request("http://localhost/v1/errands/notifications"));
    await scrapeUntil(app, (text) => sample(text, "errands_sse_clients") === 1);
    await stream.body?.cancel();
    await scrapeUntil(app, (text) => sample(text, "errands_sse_clients") === 0);
  });

  test("a scrape of a closed database is a 503, not a 500", async () => {
    const app = makeApp();
    await app.close();
    expectEnvelope(await app.call("GET", "/metrics"), 503);
  });
});

interface DocAnswer {
  $ref?: string;
  description?: string;
  content?: Record<string, { schema?: unknown; example?: unknown }>;
}
interface DocOperation {
  summary?: string;
  tags?: string[];
  responses: Record<string, DocAnswer>;
}

describe("OpenAPI document", () => {
  const METHODS = ["get", "post", "put", "delete", "patch"];

  test("is OpenAPI 3 and lists every route of the app but Swagger UI's own", async () => {
    const app = makeApp();
    const doc = (await app.call("GET", "/swagger/json")).body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe("Errands");
    const routes = app.app.routes.filter(
      (r) => !(r.hooks as { detail?: { hide?: boolean } }).detail?.hide,
    );
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      const path = route.path.replace(/:([^/]+)/g, "{$1}");
      expect({
        route: `${route.method} ${path}`,
        listed: !!doc.paths[path]?.[route.method.toLowerCase()],
      }).toEqual({
        route: `${route.method} ${path}`,
        listed: true,
      });
    }
    expect(Object.keys(doc.paths).some((p) => p.startsWith("/swagger"))).toBe(false);
  });

  test("every operation has a summary, a tag, and a described answer for each status", async () => {
    const app = makeApp({ env: { ERRANDS_TOKEN: "t" } });
    const doc = (await app.call("GET", "/swagger/json", undefined, { authorization: "Bearer t" }))
      .body;
    const tags = new Set(doc.tags.map((t: { name: string }) => t.name));
    const paths: Record<string, Record<string, DocOperation>> = doc.paths;
    const shared: Record<string, DocAnswer> = doc.components.responses;
    for (const [path, ops] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!METHODS.includes(method)) continue;
        const where = `${method} ${path}`;
        expect({ where, summary: typeof op.summary }).toEqual({ where, summary: "string" });
        expect({ where, tagged: tags.has(op.tags?.[0]) }).toEqual({
          where,
          tagged: true,
        });
        expect(Object.keys(op.responses).length).toBeGreaterThan(1);
        for (const [status, answer] of Object.entries(op.responses)) {
          const resolved = answer.$ref ? shared[answer.$ref.split("/").pop() ?? ""] : answer;
          expect({ where, status, described: typeof resolved?.description }).toEqual({
            where,
            status,
            described: "string",
          });
          const json = resolved?.content?.["application/json"];
          if (json) {
            expect(json.schema).toBeDefined();
            expect(json.example).toBeDefined();
          }
        }
      }
    }
  });

  test("request bodies are JSON with a schema and an example", async () => {
    const app = makeApp();
    const doc = (await app.call("GET", "/swagger/json")).body;
    const create = doc.paths["/v1/errands"].post.requestBody;
    expect(create.content["application/json"].schema.required).toEqual(["name", "type"]);
    expect(create.content["application/json"].example).toMatchObject({ name: expect.any(String) });
    expect(doc.paths["/v1/errand/{id}/completed"].put.requestBody.required).toBe(false);
  });

  test("declares the bearer scheme, required by every guarded route when tokens are set", async () => {
    const app = makeApp({ env: { ERRANDS_TOKEN: "t" } });
    const doc = (await app.call("GET", "/swagger/json", undefined, { authorization: "Bearer t" }))
      .body;
    expect(doc.components.securitySchemes.bearerAuth).toEqual(
      expect.objectContaining({ type: "http", scheme: "bearer" }),
    );
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/health"].get.security).toEqual([]);
    expect(doc.paths["/v1/errands"].post.responses["401"]).toBeDefined();
    expect(doc.paths["/v1/errands"].post.responses["413"]).toBeDefined();
  });
});

describe("OpenAPI document says what the server enforces", () => {
  const AUTH = { authorization: "Bearer t" };

  // biome-ignore lint/suspicious/noExplicitAny: the document is read field by field
  async function documentOf(app: TestApp, headers: Record<string, string> = {}): Promise<any> {
    const answer = await app.call("GET", "/swagger/json", undefined, headers);
    expect(answer.status).toBe(200);
    return answer.body;
  }

  // biome-ignore lint/suspicious/noExplicitAny: the document is read field by field
  function parameter(operation: any, name: string): any {
    return operation.parameters.find((p: { name: string }) => p.name === name);
  }

  test("batch and pipeline creates list their Idempotency-Key and its 409, which the server answers", async () => {
    const app = makeApp();
    const doc = await documentOf(app);
    for (const path of ["/v1/errands", "/v1/errands/batch", "/v1/pipeline"]) {
      const create = doc.paths[path].post;
      expect({ path, header: parameter(create, "idempotency-key")?.in }).toEqual({
        path,
        header: "header",
      });
      expect({ path, conflict: create.responses["409"]?.description }).toEqual({
        path,
        conflict: expect.stringContaining("Idempotency-Key"),
      });
    }
    const key = { "idempotency-key": "k1" };
    const batch = { errands: [{ name: "a", type: "t" }] };
    expect((await app.call("POST", "/v1/errands/batch", batch, key)).status).toBe(200);
    const other = { errands: [{ name: "b", type: "t" }] };
    expectEnvelope(await app.call("POST", "/v1/errands/batch", other, key), 409);
    const pkey = { "idempotency-key": "k2" };
    const pipeline = { name: "p", errands: [{ name: "x", type: "t" }] };
    expect((await app.call("POST", "/v1/pipeline", pipeline, pkey)).status).toBe(200);
    expectEnvelope(await app.call("POST", "/v1/pipeline", { ...pipeline, name: "q" }, pkey), 409);
    // The header's bounds are the schema's, on the pipeline route too.
    const long = { "idempotency-key": "k".repeat(256) };
    expect(parameter(doc.paths["/v1/pipeline"].post, "idempotency-key").schema.maxLength).toBe(255);
    const refused = await app.call("POST", "/v1/pipeline", pipeline, long);
    expectEnvelope(refused, 400);
    expect(refused.body.error).toBe("headers.idempotency-key: 1 to 255 characters");
  });

  test("the event stream lists its 400 and 503, and answers 400 for an unknown event or id", async () => {
    const app = makeApp();
    const stream = (await documentOf(app)).paths["/v1/errands/notifications"].get;
    expect(stream.responses["200"].content["text/event-stream"]).toBeDefined();
    expect(stream.responses["400"].content["application/json"].schema.required).toEqual([
      "message",
    ]);
    expect(stream.responses["503"].description).toContain("Too many streams");
    expect(parameter(stream, "last-event-id").in).toBe("header");
    const unknown = await app.call("GET", "/v1/errands/notifications?events=created,nope");
    expectEnvelope(unknown, 400);
    expect(unknown.body.error).toContain("unknown event nope");
    expectEnvelope(await app.call("GET", "/v1/errands/notifications?lastEventId=x"), 400);
  });

  test("the event stream needs the token when one is set, as a bearer or as ?token=", async () => {
    const guarded = makeApp({ env: { ERRANDS_TOKEN: "t" } });
    const doc = await documentOf(guarded, AUTH);
    const stream = doc.paths["/v1/errands/notifications"].get;
    expect(stream.security).toEqual([{ bearerAuth: [] }, { tokenQuery: [] }]);
    expect(doc.components.securitySchemes.tokenQuery).toEqual(
      expect.objectContaining({ type: "apiKey", in: "query", name: "token" }),
    );
    expect(stream.responses["401"]).toBeDefined();
    const refused = await guarded.app.handle(
      new Request("http://localhost/v1/errands/notifications"),
    );
    expect(refused.status).toBe(401);
    // Without tokens nothing is required, and no operation claims an exemption it does not need.
    const open = await documentOf(makeApp());
    expect(open.security).toEqual([]);
    expect(open.paths["/v1/errands/notifications"].get.security).toBeUndefined();
    expect(open.paths["/v1/errands/notifications"].get.responses["401"]).toBeUndefined();
  });

  test("runAt and delay exclude each other: said by the options and the creates' 400, refused by the server", async () => {
    const app = makeApp();
    const doc = await documentOf(app);
    const options =
      doc.paths["/v1/errands"].post.requestBody.content["application/json"].schema.properties
        .options;
    expect(options.description).toMatch(/runAt.*delay.*exclude/);
    expect(options.properties.runAt.description).toContain("Not with `delay`");
    expect(options.properties.delay.description).toContain("Not with `runAt`");
    for (const path of ["/v1/errands", "/v1/errands/batch", "/v1/pipeline"]) {
      expect({ path, said: doc.paths[path].post.responses["400"].description }).toEqual({
        path,
        said: expect.stringMatching(/runAt.*delay/),
      });
    }
    const both = { runAt: app.clock.now() + 1000, delay: 1000 };
    const refused = await app.call("POST", "/v1/errands", { name: "a", type: "t", options: both });
    expectEnvelope(refused, 400);
    expect(refused.body.error).toContain("runAt or delay, not both");
  });

  test("process?type= requires the type, and its absence is v1's 400", async () => {
    const app = makeApp();
    const process = (await documentOf(app)).paths["/v1/errands/process"].post;
    expect(parameter(process, "type")).toEqual(
      expect.objectContaining({
        required: true,
        schema: expect.objectContaining({ minLength: 1 }),
      }),
    );
    expect(process.responses["400"].description).toContain("type is missing");
    expect(process.responses["409"]).toBeUndefined();
    for (const path of [
      "/v1/errands/process",
      "/v1/errands/process?type=",
      "/v1/errands/process/",
    ]) {
      const answer = await app.call("POST", path);
      expect({ path, status: answer.status, body: answer.body }).toEqual({
        path,
        status: 400,
        body: { message: "Invalid request", error: "the errand type to claim is missing" },
      });
    }
    expect((await app.call("POST", "/v1/errands/process?type=t")).body.message).toBe("No jobs");
  });

  test("the bulk update says its body is status or delete, and refuses both or neither", async () => {
    const app = makeApp();
    const update = (await documentOf(app)).paths["/v1/errands/update/{key}/{val}"].post;
    const body = update.requestBody.content["application/json"].schema;
    expect(body.description).toMatch(/Exactly one of .*status.* and .*delete/);
    expect(body.properties.status.enum).toContain("inactive");
    expect(update.responses["400"].description).toMatch(/exactly one of/);
    for (const sent of [{}, { status: "inactive", delete: true }, { status: "scheduled" }]) {
      expectEnvelope(await app.call("POST", "/v1/errands/update/type/t", sent), 400);
    }
    expect((await app.call("POST", "/v1/errands/update/type/t", { delete: true })).status).toBe(
      200,
    );
  });

  test("a pipeline's name and errands are required, and missing ones get v1's answer", async () => {
    const app = makeApp();
    const create = (await documentOf(app)).paths["/v1/pipeline"].post;
    const schema = create.requestBody.content["application/json"].schema;
    expect(schema.required).toEqual(["name", "errands"]);
    expect(schema.properties.name.minLength).toBe(1);
    expect(schema.properties.errands.minItems).toBe(1);
    const cases = [
      [{ errands: [{ name: "a", type: "t" }] }, "the pipeline has no name"],
      [{ name: "", errands: [{ name: "a", type: "t" }] }, "the pipeline has no name"],
      [{ name: "p" }, "no errands specified in pipeline"],
      [{ name: "p", errands: [] }, "no errands specified in pipeline"],
    ] as const;
    for (const [body, error] of cases) {
      for (const path of ["/v1/pipeline", "/v1/pipeline?dryRun=true"]) {
        const answer = await app.call("POST", path, body);
        expect({ path, body, status: answer.status, answer: answer.body }).toEqual({
          path,
          body,
          status: 400,
          answer: { message: "pipeline validation failed", error },
        });
      }
    }
    // Any other fault of those fields is the usual validation answer, naming the field.
    const typed = await app.call("POST", "/v1/pipeline", { name: 5, errands: [] });
    expect(typed.body).toEqual({ message: "Invalid request", error: "body.name: Expected string" });
  });

  test("dryRun and next are enums, and a value outside them is 400", async () => {
    const app = makeApp();
    const doc = await documentOf(app);
    const dryRun = parameter(doc.paths["/v1/pipeline"].post, "dryRun").schema;
    expect(dryRun.enum).toEqual([
      "1",
      "t",
      "T",
      "TRUE",
      "true",
      "True",
      "0",
      "f",
      "F",
      "FALSE",
      "false",
      "False",
    ]);
    expect(dryRun.description).toContain("ParseBool");
    const next = parameter(doc.paths["/v1/errand/{id}/completed"].put, "next").schema;
    expect(next).toEqual(expect.objectContaining({ type: "string", enum: ["true", "false"] }));
    const pipeline = { name: "p", errands: [{ name: "x", type: "t" }] };
    for (const value of dryRun.enum) {
      const answer = await app.call("POST", `/v1/pipeline?dryRun=${value}`, pipeline);
      expect({ value, status: answer.status }).toEqual({ value, status: 200 });
    }
    const no = await app.call("POST", "/v1/pipeline?dryRun=yes", pipeline);
    expect(no.body).toEqual({
      message: "Invalid request",
      error:
        'query.dryRun: "yes" is not one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False',
    });
    for (const name of ["a", "b", "c"]) await app.call("POST", "/v1/errands", { name, type: "n" });
    const claimed = (await app.call("POST", "/v1/errands/process/n")).body.results;
    for (const value of ["1", "TRUE", "yes", ""]) {
      const answer = await app.call("PUT", `/v1/errand/${claimed.id}/completed?next=${value}`, {});
      expect({ value, status: answer.status }).toEqual({ value, status: 400 });
    }
    const plain = await app.call("PUT", `/v1/errand/${claimed.id}/completed?next=false`, {});
    expect(plain.body.next).toBeUndefined();
    const again = (await app.call("POST", "/v1/errands/process/n")).body.results;
    const chained = await app.call("PUT", `/v1/errand/${again.id}/completed?next=true`, {});
    expect(chained.body.next.status).toBe("active");
  });

  test("clear's duration has a pattern, and the server refuses exactly what it does not match", async () => {
    const app = makeApp();
    const clear = (await documentOf(app)).paths["/v1/errands/clear/{duration}"].post;
    const pattern = new RegExp(parameter(clear, "duration").schema.pattern);
    const samples = [
      "1h",
      "90s",
      "300ms",
      "2h45m10s",
      "1.5h",
      ".5s",
      "0",
      "+1m",
      "1µs",
      "1μs",
      "10us",
      "5ns",
    ];
    const wrong = [
      "1x",
      "h",
      "1",
      "00",
      "1h ",
      " 1h",
      "1H",
      "1e3s",
      "1h-5m",
      "--1h",
      "1.2.3s",
      "%20",
    ];
    for (const text of samples) {
      const answer = await app.call("POST", `/v1/errands/clear/${encodeURIComponent(text)}`);
      expect({ text, matches: pattern.test(text), status: answer.status }).toEqual({
        text,
        matches: true,
        status: 200,
      });
    }
    for (const text of wrong) {
      const answer = await app.call("POST", `/v1/errands/clear/${encodeURIComponent(text)}`);
      expect({
        text,
        matches: pattern.test(text),
        status: answer.status,
        body: answer.body,
      }).toEqual({
        text,
        matches: false,
        status: 400,
        body: {
          message: "Invalid duration",
          error: `${JSON.stringify(text)} is not a duration such as 90s, 1h30m or 300ms`,
        },
      });
    }
    // A negative duration matches the syntax; the server refuses it too, as the 400 says.
    expect(clear.responses["400"].description).toContain("negative");
    expect((await app.call("POST", "/v1/errands/clear/-1h")).body.error).toBe(
      "the duration must not be negative",
    );
  });

  test("limit is an integer from 1 to 10000 and wait a number, as the server reads them", async () => {
    const app = makeApp();
    const doc = await documentOf(app);
    for (const path of ["/v1/errands", "/v1/errands/list/{key}/{val}", "/v1/pipelines"]) {
      const limit = parameter(doc.paths[path].get, "limit").schema;
      expect({ path, limit: { ...limit, error: undefined } }).toEqual({
        path,
        limit: { type: "integer", minimum: 1, maximum: 10000, error: undefined },
      });
    }
    const wait = parameter(doc.paths["/v1/errands/process/{type}"].post, "wait").schema;
    expect(wait).toEqual(
      expect.objectContaining({ type: "number", exclusiveMinimum: 0, maximum: 60 }),
    );
    expect(wait.anyOf).toBeUndefined();
    for (const value of ["1.5", "abc", "0", "10001", "-1"]) {
      const answer = await app.call("GET", `/v1/errands?limit=${value}`);
      expect({ value, status: answer.status }).toEqual({ value, status: 400 });
    }
    expect((await app.call("GET", "/v1/pipelines?limit=1.5")).status).toBe(400);
    expect((await app.call("GET", "/v1/errands?limit=2")).body.next).toBeNull();
  });

  test("a union of string literals reads as an enum everywhere in the document", async () => {
    const doc = await documentOf(makeApp());
    const errand =
      doc.paths["/v1/errand/{id}"].get.responses["200"].content["application/json"].schema
        .properties.results;
    expect(errand.properties.status.enum).toEqual([
      "blocked",
      "inactive",
      "active",
      "failed",
      "completed",
      "scheduled",
    ]);
    expect(errand.properties.logs.items.properties.severity.enum).toEqual([
      "INFO",
      "WARNING",
      "ERROR",
    ]);
    const text = JSON.stringify(doc);
    expect(text).not.toContain('"const":"inactive"');
  });
});

describe("a wrong method on a known path", () => {
  /** A concrete path for a route template: each parameter replaced by a plausible value. */
  const concrete = (template: string) =>
    template
      .replace(":key/:val", "type/t1")
      .replace(":duration", "1h")
      .replace(":name", "swagger-ui.css")
      .replace(/:[a-z]+/g, "t1");

  /** Status and Allow of a request, without reading an endless event stream. */
  async function probe(app: TestApp, method: string, path: string, headers = {}) {
    const res = await app.app.handle(new Request(`http://localhost${path}`, { method, headers }));
    if (res.headers.get("content-type")?.includes("text/event-stream")) {
      await res.body?.cancel();
      return { status: res.status, allow: res.headers.get("allow"), text: "" };
    }
    return { status: res.status, allow: res.headers.get("allow"), text: await res.text() };
  }

  test("is 405 with Allow listing the methods the path takes and the envelope; unknown paths stay 404", async () => {
    const app = makeApp();
    const cases = [
      ["DELETE", "/v1/errands", "GET, HEAD, POST, OPTIONS"],
      ["PATCH", "/v1/errand/e1", "GET, HEAD, PUT, DELETE, OPTIONS"],
      ["GET", "/v1/errands/batch", "POST, OPTIONS"],
      ["HEAD", "/v1/errands/batch", "POST, OPTIONS"],
      ["GET", "/v1/errand/e1/log", "POST, OPTIONS"],
      ["GET", "/v1/errands/process/t", "POST, OPTIONS"],
      ["GET", "/v1/errands/process?type=t", "POST, OPTIONS"],
      ["POST", "/v1/types", "GET, HEAD, OPTIONS"],
      ["POST", "/v1/schedules/s", "GET, HEAD, PUT, DELETE, OPTIONS"],
      ["DELETE", "/v1/schedules", "GET, HEAD, OPTIONS"],
      ["PUT", "/v1/pipelines/", "GET, HEAD, OPTIONS"],
      ["DELETE", "/v1/errands/clear/1h", "POST, OPTIONS"],
      ["POST", "/v1/errands/notifications", "GET, HEAD, OPTIONS"],
      ["DELETE", "/", "GET, HEAD, OPTIONS"],
    ] as const;
    for (const [method, path, allow] of cases) {
      const answer = await app.call(
        method,
        path,
        method === "GET" || method === "HEAD" ? undefined : {},
      );
      expect({ method, path, status: answer.status, allow: answer.headers.get("allow") }).toEqual({
        method,
        path,
        status: 405,
        allow,
      });
      if (method !== "HEAD") {
        expect(answer.body).toEqual({
          message: "Method not allowed",
          error: expect.stringContaining(`takes ${allow}, not ${method}`),
        });
      }
    }
    // Nothing was created, claimed or deleted along the way.
    expect((await app.call("GET", "/v1/errands")).body.results).toEqual([]);
    // A path no route takes, with any method, stays a 404.
    for (const [method, path] of [
      ["GET", "/v1/nothing"],
      ["PATCH", "/v1/errand/a/b/c"],
      ["POST", "/v1/errands/process//"],
      ["GET", "/v1/errands/list/status"],
      ["DELETE", "/index.html"],
    ] as const) {
      const answer = await app.call(method, path);
      expect({ method, path, status: answer.status, allow: answer.headers.get("allow") }).toEqual({
        method,
        path,
        status: 404,
        allow: null,
      });
      expect(answer.body).toEqual({ message: "Not found", error: "no such route" });
    }
  });

  test("every method Allow lists is served on every route, and every other one is 405", async () => {
    const app = makeApp();
    const wrong: string[] = [];
    for (const route of app.app.routes) {
      const path = concrete(route.path);
      // No route takes PATCH: its 405 tells what the path takes.
      const first = await probe(app, "PATCH", path);
      const allow = (first.allow ?? "").split(", ");
      if (first.status !== 405 || !allow.includes(route.method)) {
        wrong.push(`${route.method} ${route.path}: ${first.status} Allow ${first.allow}`);
        continue;
      }
      for (const method of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) {
        // app.handle answers HEAD by reading the whole body, which an event stream never ends
        // (over a socket Bun answers it at once).
        if (method === "HEAD" && path === "/v1/errands/notifications") continue;
        const answer = await probe(app, method, path);
        const refused = answer.status === 405 || answer.text.includes("no such route");
        if (refused === allow.includes(method)) {
          wrong.push(`${method} ${path}: ${answer.status}, Allow ${first.allow}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  test("with a token set, a request without it gets 401 before any 405 or 404", async () => {
    const app = makeApp({ env: { ERRANDS_TOKEN: "t" } });
    const bearer = { authorization: "Bearer t" };
    for (const [method, path] of [
      ["PATCH", "/v1/errand/e1"],
      ["GET", "/v1/errands/batch"],
      ["DELETE", "/v1/types"],
      ["PUT", "/metrics"],
      ["POST", "/swagger/json"],
      ["POST", "/v1/errands/notifications"],
    ] as const) {
      const without = await probe(app, method, path);
      expect({ method, path, status: without.status, allow: without.allow }).toEqual({
        method,
        path,
        status: 401,
        allow: null,
      });
      const wrongToken = await probe(app, method, path, { authorization: "Bearer nope" });
      expect(wrongToken.status).toBe(401);
      const withToken = await probe(app, method, path, bearer);
      expect({ method, path, status: withToken.status }).toEqual({ method, path, status: 405 });
      expect(withToken.allow).toContain("OPTIONS");
    }
    expect((await probe(app, "GET", "/v1/nothing")).status).toBe(401);
    expect((await probe(app, "GET", "/v1/nothing", bearer)).status).toBe(404);
    // The health check is open, so its methods are no secret.
    const health = await probe(app, "PUT", "/health");
    expect({ status: health.status, allow: health.allow }).toEqual({
      status: 405,
      allow: "GET, HEAD, OPTIONS",
    });
  });
});

describe("Swagger UI page", () => {
  test("links only its own assets, each served, and no other host", async () => {
    const app = makeApp();
    const page = await app.call("GET", "/swagger");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = page.body as string;
    expect(html).not.toMatch(/https?:\/\//);
    const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? "");
    expect(links).toContain("swagger/assets/swagger-ui-bundle.js");
    expect(links).toContain("swagger/assets/swagger-ui.css");
    for (const link of links) {
      const asset = await app.app.handle(
        new Request(new URL(link, "http://localhost/swagger").href),
      );
      expect({ link, status: asset.status }).toEqual({ link, status: 200 });
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
  });

  test("answers under /swagger/ as well, with links that still resolve", async () => {
    const app = makeApp();
    const html = (await app.call("GET", "/swagger/")).body as string;
    const script = /<script src="([^"]+)"/.exec(html)?.[1] ?? "";
    const url = new URL(script, "http://localhost/swagger/");
    expect(url.pathname).toBe("/swagger/assets/swagger-ui-bundle.js");
  });

  test("an unknown asset is a 404 with the error envelope", async () => {
    const app = makeApp();
    expectEnvelope(await app.call("GET", "/swagger/assets/nothing.js"), 404);
  });
});
