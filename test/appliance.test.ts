// The operations surface through app.handle: CORS, bearer tokens, the body limit, /health,
// /metrics, the OpenAPI document and the Swagger UI page (SPEC §8).

import { afterAll, describe, expect, test } from "bun:test";
import { type Answer, makeApp, removeTempDirs, type TestApp } from "./harness.ts";

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

  test("the SSE clients gauge follows the open event streams", async () => {
    const app = makeApp();
    const stream = await app.app.handle(new Request("http://localhost/v1/errands/notifications"));
    await scrapeUntil(app, (text) => sample(text, "errands_sse_clients") === 1);
    await stream.body?.cancel();
    await scrapeUntil(app, (text) => sample(text, "errands_sse_clients") === 0);
  });

  test("a scrape of a closed database is a 503, not a 500", async () => {
    const app = makeApp();
    app.close();
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
