// Tokens over a real socket, with the Host headers and paths an attacker would send: the
// router and the check must agree on which route a request reaches, for every route.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { makeApp, removeTempDirs, type TestApp } from "./harness.ts";

const TOKEN = "s3cret";

/** Sends one raw HTTP/1.1 request, so that the Host header is exactly what the test says. */
function rawRequest(
  port: number,
  request: {
    method: string;
    target: string;
    host: string | null;
    headers?: string[];
    body?: string;
  },
): Promise<{ status: number; text: string }> {
  const body = request.body ?? "";
  const lines = [
    `${request.method} ${request.target} HTTP/1.1`,
    ...(request.host === null ? [] : [`Host: ${request.host}`]),
    ...(request.headers ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: close",
    "",
    body,
  ];
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      // An event stream never ends by itself: its head is all there is to read.
      const head = Buffer.concat(chunks).toString("utf8");
      if (head.includes("\r\n\r\n") && /content-type: text\/event-stream/i.test(head)) {
        socket.destroy();
      }
    });
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.write(lines.join("\r\n"));
  });
}

/** A concrete path for a route template: each parameter replaced by a plausible value. */
function concrete(template: string, dashboardAsset: string): string {
  return template
    .replace("/ui/assets/:name", `/ui/assets/${dashboardAsset}`)
    .replace(":key/:val", "type/t1")
    .replace(":duration", "1h")
    .replace(":name", "swagger-ui.css")
    .replace(/:[a-z]+/g, "t1");
}

/** Open to all: the health check, and the dashboard's page and files (code, no data). */
const isOpen = (method: string, path: string) =>
  path === "/health" ||
  ((method === "GET" || method === "HEAD") && (path === "/" || path.startsWith("/ui/assets/")));

/** The dashboard's page or one of its files, as answered to anyone. */
const dashboardAnswer = (text: string) =>
  /content-type: text\/html/i.test(text)
    ? text.includes('<div id="app"></div>')
    : /content-type: text\/(javascript|css)/i.test(text) && /cache-control: public/i.test(text);

const HOSTS = ["a", "", "ab", "abc", "a/b", "a b", "x@y", "a:99999", "[::1]", "localhost:1"];

describe("tokens hold whatever the Host, path or method", () => {
  let app: TestApp;
  let port: number;
  let routes: Array<{ method: string; path: string }>;

  beforeAll(async () => {
    app = makeApp({ env: { ERRANDS_TOKEN: TOKEN } });
    app.app.listen({ hostname: "127.0.0.1", port: 0 });
    port = app.app.server?.port ?? 0;
    const page = await rawRequest(port, { method: "GET", target: "/", host: "a" });
    const asset = /ui\/assets\/([^"]+\.js)"/.exec(page.text)?.[1] ?? "missing.js";
    routes = app.app.routes
      .filter((r) => r.method !== "OPTIONS")
      .map((r) => ({ method: r.method, path: concrete(r.path, asset) }));
    expect(asset).not.toBe("missing.js");
  });
  afterAll(async () => {
    app.release();
    await app.app.stop(true);
    app.close();
    removeTempDirs();
  });

  test("an errand planted by no one: each route, through every disguise, without the token", async () => {
    const bearer = { authorization: `Bearer ${TOKEN}` };
    // A completed errand, which a bulk retry or delete let through would change.
    await app.call("POST", "/v1/errands", { name: "kept", type: "t1" }, bearer);
    const claimed = await app.call("POST", "/v1/errands/process/t1", undefined, bearer);
    const kept = (
      await app.call("PUT", `/v1/errand/${claimed.body.results.id}/completed`, {}, bearer)
    ).body.results;
    expect(kept.status).toBe("completed");
    const refused: string[] = [];
    for (const { method, path } of routes) {
      const targets = [path, `/health?${path}`, `/x/health?y${path}`, `/health/..${path}`];
      for (const host of HOSTS) {
        for (const target of targets) {
          // Every route's body at once: create, bulk update, bulk retry or delete of all, an
          // ack and a schedule (each answers 2xx to it, were it let through).
          const body =
            method === "GET"
              ? ""
              : '{"name":"evil","type":"t1","delete":true,"filter":{},"items":[{"id":"t1","completed":{}}],"every":60000,"errand":{"name":"evil","type":"t1"}}';
          const answer = await rawRequest(port, { method, target, host, body });
          const validHost = ["a", "ab", "abc", "[::1]", "localhost:1"].includes(host);
          // The health check may answer, as itself (`/health?…` is /health with a query string).
          const healthAnswer = /^\{"status":"OK","version":"[^"]*"\}$/.test(
            answer.text.slice(answer.text.indexOf("\r\n\r\n") + 4),
          );
          if (method === "GET" && validHost && (healthAnswer || dashboardAnswer(answer.text))) {
            continue;
          }
          if (answer.status < 400 || answer.status >= 500) {
            refused.push(`${method} ${target} Host:${JSON.stringify(host)} → ${answer.status}`);
          }
          if (!validHost && answer.status !== 400) {
            refused.push(
              `${method} ${target} Host:${JSON.stringify(host)} → ${answer.status}, not 400`,
            );
          }
        }
      }
    }
    expect(refused).toEqual([]);
    // Nothing was created, changed, deleted or claimed along the way, no schedule either.
    const list = await app.call("GET", "/v1/errands", undefined, bearer);
    expect(list.body.results).toEqual([kept]);
    expect((await app.call("GET", "/v1/schedules", undefined, bearer)).body.results).toEqual([]);
  });

  test("every route but /health and the dashboard's code answers 401 without the token, and is served with it", async () => {
    const wrong: string[] = [];
    for (const { method, path } of routes) {
      for (const host of ["a", "ab", "localhost:1"]) {
        const without = await rawRequest(port, { method, target: path, host });
        const expected = isOpen(method, path) ? 200 : 401;
        if (without.status !== expected) wrong.push(`${method} ${path} → ${without.status}`);
        const withToken = await rawRequest(port, {
          method,
          target: path,
          host,
          headers: [`Authorization: Bearer ${TOKEN}`],
        });
        if (withToken.status === 401) wrong.push(`${method} ${path} with the token → 401`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("a method the route does not take: 401 without the token, 405 with Allow with it", async () => {
    const wrong: string[] = [];
    for (const { path } of routes) {
      for (const host of ["a", "ab", "localhost:1"]) {
        const without = await rawRequest(port, { method: "PATCH", target: path, host });
        // The health check is open: its methods are no secret.
        const expected = path === "/health" ? 405 : 401;
        if (without.status !== expected) wrong.push(`PATCH ${path} → ${without.status}`);
        if (/^allow:/im.test(without.text) !== (expected === 405)) {
          wrong.push(
            `PATCH ${path} without the token: Allow ${expected === 405 ? "missing" : "sent"}`,
          );
        }
        const withToken = await rawRequest(port, {
          method: "PATCH",
          target: path,
          host,
          headers: [`Authorization: Bearer ${TOKEN}`],
        });
        if (withToken.status !== 405 || !/^allow: .*OPTIONS/im.test(withToken.text)) {
          wrong.push(`PATCH ${path} with the token → ${withToken.status}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  test("the one-letter Host of the report no longer creates, lists or deletes", async () => {
    const create = await rawRequest(port, {
      method: "POST",
      target: "/health?/v1/errands/",
      host: "a",
      body: '{"name":"evil","type":"t1"}',
    });
    expect(create.status).not.toBe(200);
    const list = await rawRequest(port, {
      method: "GET",
      target: "/x/health?y/v1/errands/",
      host: "",
    });
    expect(list.status).toBe(400);
    expect(list.text).toContain('"message":"Bad request"');
    const remove = await rawRequest(port, {
      method: "POST",
      target: "/x/health?y/v1/errands/update/type/t1",
      host: "",
      body: '{"delete":true}',
    });
    expect(remove.status).toBe(400);
    for (const action of ["retry", "delete"]) {
      const bulk = await rawRequest(port, {
        method: "POST",
        target: `/health?/v1/errands/${action}`,
        host: "a",
        body: '{"filter":{}}',
      });
      expect(bulk.status).not.toBe(200);
    }
  });
});
