// Builds the HTTP app over a storage driver: CORS, auth, the body limit, the error envelope, the
// modules, health, metrics, the OpenAPI document with Swagger UI, and the background sweep.

import { Elysia } from "elysia";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { IdempotencyKeys } from "./errands/idempotency.ts";
import { errandRoutes } from "./errands/routes.ts";
import { ErrandService } from "./errands/service.ts";
import { BadInput, DomainError, retryAfterSeconds, Unauthorized } from "./errors.ts";
import { EventBus } from "./events/bus.ts";
import { EventStreams } from "./events/stream.ts";
import { Waiters } from "./events/waiters.ts";
import { Auth, requestTarget } from "./ops/auth.ts";
import { BodyTooLarge, declaresTooLarge, readBodyText } from "./ops/body-limit.ts";
import { Cors } from "./ops/cors.ts";
import { HealthCheck, healthRoutes } from "./ops/health.ts";
import { type Logger, silentLogger } from "./ops/log.ts";
import { Metrics, metricsRoutes } from "./ops/metrics.ts";
import { openapiDocument } from "./ops/openapi.ts";
import { RouteMethods } from "./ops/route-methods.ts";
import { swaggerRoutes } from "./ops/swagger.ts";
import { pipelineRoutes } from "./pipelines/routes.ts";
import { PipelineService } from "./pipelines/service.ts";
import { scheduleRoutes } from "./schedules/routes.ts";
import { ScheduleService } from "./schedules/service.ts";
import type { Driver } from "./store/driver.ts";
import { History } from "./types/history.ts";
import { typeRoutes } from "./types/routes.ts";
import { TypeService } from "./types/service.ts";
import { dashboardRoutes } from "./ui/routes.ts";
import { VERSION } from "./version.ts";

const BEARER_CHALLENGE = 'Bearer realm="errands"';

/** The route label of answers given before routing (preflights, 401, 413) and of 404s. */
const UNROUTED = "(unrouted)";

export interface AppDeps {
  driver: Driver;
  clock: Clock;
  config: Config;
  logger?: Logger;
}

export function createApp(deps: AppDeps) {
  const { driver, clock, config } = deps;
  const logger = deps.logger ?? silentLogger;
  const bus = new EventBus(driver, () => clock.now());
  const keys = new IdempotencyKeys(driver, clock);
  const pipelines = new PipelineService({
    driver,
    clock,
    bus,
    maxLogs: config.maxLogs,
    keys,
  });
  const errands = new ErrandService({
    driver,
    clock,
    bus,
    maxLogs: config.maxLogs,
    pipelines,
    keys,
    onExpired: (errand, reason) =>
      logger.info("errand expired", {
        id: errand.id,
        type: errand.type,
        reason,
        status: errand.status,
      }),
    onRateLimited: (type) => metrics.observeRateLimited(type),
  });

  const schedules = new ScheduleService(driver, clock, errands, (fired) =>
    logger.info("schedule fired", {
      schedule: fired.schedule,
      tick: new Date(fired.tick).toISOString(),
      errand: fired.errand,
      // overlap: skip held it back, the schedule's last errand being unfinished.
      skipped: fired.errand === null,
    }),
  );

  const metrics = new Metrics({
    depth: () => driver.reads.countsByTypeAndStatus(),
    controls: () => driver.reads.typeControls(),
    longPolls: () => waiters.count,
    now: () => clock.now(),
    maxTypes: config.metricsMaxTypes,
  });
  bus.observe((event) => metrics.observe(event));
  const history = new History(driver, clock);
  bus.observe((event) => history.observe(event));
  const auth = new Auth(config.tokens, config.metricsPublic);
  const cors = new Cors(config.corsOrigins);
  /** When each request arrived, for the latency histogram. */
  const arrived = new WeakMap<Request, number>();
  const elapsed = (request: Request) =>
    (performance.now() - (arrived.get(request) ?? performance.now())) / 1000;

  const waiters = new Waiters(errands, bus, clock);
  const types = new TypeService(driver, clock, (type) => waiters.serve(type));
  const streams = new EventStreams(driver.reads, bus, {
    keepAliveMs: config.keepAliveMs,
    maxStreams: config.maxStreams,
    maxBufferBytes: config.sseMaxBufferBytes,
    onClientCount: (delta) => metrics.sseClients.inc(delta),
  });

  // normalize: false — bodies are validated as sent, never coerced (an array is not an object).
  // standardHostname: false — the router finds the path after any host, however short, where
  // it would otherwise skip the first 11 characters of the URL (a one-letter Host then let
  // the query string pose as the path).
  const app = new Elysia({ normalize: false, handler: { standardHostname: false } })
    // Before routing, so no body is read for a client that will be refused anyway.
    .onRequest(({ request, set }) => {
      arrived.set(request, performance.now());
      const origin = request.headers.get("origin");
      Object.assign(set.headers, cors.headers(origin));
      const refuse = (status: number, body: object) => {
        metrics.observeRequest(request.method, UNROUTED, status, elapsed(request));
        set.status = status;
        return body;
      };
      if (request.method === "OPTIONS") {
        metrics.observeRequest(request.method, UNROUTED, 204, elapsed(request));
        return cors.preflight(origin);
      }
      if (declaresTooLarge(request, config.maxBody)) {
        const error = new BodyTooLarge(config.maxBody);
        return refuse(413, { message: error.message, error: error.detail });
      }
      const target = requestTarget(request.url);
      if (target === null) {
        return refuse(400, {
          message: "Bad request",
          error: "the Host header is missing or invalid",
        });
      }
      // Refused here, before any body is read; checked again below on the route matched.
      if (auth.guards(request.method, target.path) && !auth.admits(request, target.path)) {
        set.headers["www-authenticate"] = BEARER_CHALLENGE;
        const error = new Unauthorized();
        return refuse(401, { message: error.message, error: error.detail });
      }
    })
    // The decision that counts: made on the route the router actually chose, whatever path
    // the URL seemed to have, before its input is validated. Only the health route is exempt.
    .onTransform(({ request, route }) => {
      if (auth.guards(request.method, route) && !auth.admits(request, route)) {
        throw new Unauthorized();
      }
    })
    .onParse(async ({ request }) => parseJsonBody(request, config.maxBody))
    .onError(({ code, error, set, request }) => {
      const answer =
        (code === "NOT_FOUND" && wrongMethod(request, set.headers)) || toErrorAnswer(code, error);
      if (answer.status >= 500 && answer.status !== 503) {
        logger.error("request failed", {
          method: request.method,
          url: request.url,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        });
      }
      set.status = answer.status;
      if (answer.status === 401) set.headers["www-authenticate"] = BEARER_CHALLENGE;
      if (answer.body.retryAfterMs !== undefined) {
        set.headers["retry-after"] = retryAfterSeconds(answer.body.retryAfterMs);
      }
      return answer.body;
    })
    .onAfterResponse((context) => {
      const { request, set } = context;
      const { route, response } = context as { route?: string; response?: unknown };
      const code =
        response instanceof Response
          ? response.status
          : typeof set.status === "number"
            ? set.status
            : 200;
      metrics.observeRequest(request.method, route || UNROUTED, code, elapsed(request));
    })
    .use(healthRoutes(new HealthCheck(driver, () => clock.now()), VERSION))
    .use(metricsRoutes(metrics))
    .use(swaggerRoutes("Errands API"))
    .use(dashboardRoutes())
    .use(errandRoutes(errands, waiters))
    .use(pipelineRoutes(pipelines))
    .use(typeRoutes(types, history))
    .use(scheduleRoutes(schedules))
    .use(streams.routes());

  // Built once, on first request, from every route above.
  let document: object | undefined;
  app.get("/swagger/json", () => (document ??= openapiDocument(app, { version: VERSION, auth })), {
    detail: { hide: true },
  });

  // Built once, on the first request no route takes, from every route above.
  let methods: RouteMethods | undefined;
  /**
   * A known path asked with a method it does not take: 405 with Allow, or 401 first where the
   * route it reached needs a token, as on any matched route. Null for an unknown path (404).
   */
  const wrongMethod = (request: Request, headers: Record<string, unknown>): ErrorAnswer | null => {
    const target = requestTarget(request.url);
    if (target === null) return null;
    methods ??= new RouteMethods(app.routes);
    const refused = methods.refusing(request.method, target.path);
    if (refused === null) return null;
    if (auth.guards(request.method, refused.route) && !auth.admits(request, refused.route)) {
      return toErrorAnswer("UNAUTHORIZED", new Unauthorized());
    }
    headers.allow = refused.allow;
    return {
      status: 405,
      body: {
        message: "Method not allowed",
        error: `${refused.route} takes ${refused.allow}, not ${request.method}`,
      },
    };
  };

  /**
   * One pass of the background checks: recurring schedules' ticks, scheduled errands come due,
   * TTL and heartbeat expiry, the per-minute history, event, idempotency-key and tick
   * retention. Each is an indexed query.
   */
  const sweep = async () => {
    await schedules.fireDue();
    // Long polls held by a rate limit whose window has moved on (a timer does it sooner).
    waiters.serveEndedHolds();
    await errands.promoteDue();
    await errands.expireOverdue();
    await errands.expireSilent();
    // After the expiries, so their failures are written in this pass.
    await history.sweep();
    await bus.prune(driver, clock.now() - config.eventRetentionMs);
    await keys.prune();
    await schedules.pruneTicks();
    await driver.maintain?.();
  };

  /** Ends what holds requests open: long-poll waiters and event streams (shutdown). */
  const release = () => {
    waiters.closeAll();
    streams.closeAll();
  };

  return {
    app,
    bus,
    keys,
    errands,
    pipelines,
    types,
    history,
    schedules,
    waiters,
    streams,
    metrics,
    sweep,
    release,
  };
}

export type App = ReturnType<typeof createApp>;

interface ErrorAnswer {
  status: number;
  body: { message: string; error: string; retryAfterMs?: number };
}

/** Maps anything thrown while handling a request to a status and the error envelope. */
function toErrorAnswer(code: string | number, error: unknown): ErrorAnswer {
  const domain =
    // A domain error thrown while parsing reaches here wrapped in Elysia's ParseError.
    error instanceof Error && code === "PARSE"
      ? error.cause
      : // A schema's `error` may name the domain error its violation means (v1's answers).
        code === "VALIDATION"
        ? ((error as { customError?: unknown }).customError ?? error)
        : error;
  if (domain instanceof DomainError) {
    const body = { message: domain.message, error: domain.detail };
    const { retryAfterMs } = domain;
    return {
      status: domain.status,
      body: retryAfterMs === undefined ? body : { ...body, retryAfterMs },
    };
  }
  switch (code) {
    case "VALIDATION":
      return {
        status: 400,
        body: { message: "Invalid request", error: describeValidation(error) },
      };
    case "PARSE":
      return {
        status: 400,
        body: { message: "Malformed body", error: "the body is not valid JSON" },
      };
    case "NOT_FOUND":
      return { status: 404, body: { message: "Not found", error: "no such route" } };
  }
  if (error instanceof Error && error.name === "SQLiteError") {
    return { status: 503, body: { message: "Storage unavailable", error: error.message } };
  }
  const status =
    typeof error === "object" && error !== null && "status" in error ? error.status : 0;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return { status, body: { message: "Bad request", error: String((error as Error).message) } };
  }
  return { status: 500, body: { message: "Internal error", error: "the server could not answer" } };
}

/** Deepest nesting accepted: JSON.parse takes more than JSON.stringify can write back. */
const MAX_JSON_DEPTH = 1000;

/**
 * Every body is JSON, whatever its Content-Type says (v1 read it so). An empty body reads as
 * `{}`: answering undefined would hand the already-read request to Elysia's own parser, which
 * refuses it, and clients commonly send `Content-Type: application/json` with no body on
 * routes that take none (claim, retry).
 */
async function parseJsonBody(request: Request, maxBody: number): Promise<unknown> {
  const text = await readBodyText(request, maxBody);
  if (text.trim() === "") return {};
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new BadInput("Malformed body", `the body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadInput("Malformed body", "the body is not valid JSON");
  }
  // Only a \uD800–\uDFFF escape can make one: decoded UTF-8 text has none of its own.
  if (SURROGATE_ESCAPE.test(text) && !wellFormed(body)) {
    throw new BadInput(
      "Malformed body",
      "the body has a lone surrogate (a \\uD800–\\uDFFF escape without its pair): it cannot be stored as text",
    );
  }
  return body;
}

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Whether every string in a parsed JSON value, keys included, is well-formed Unicode. */
function wellFormed(value: unknown): boolean {
  if (typeof value === "string") return value.isWellFormed();
  if (Array.isArray(value)) return value.every(wellFormed);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).every(([key, item]) => key.isWellFormed() && wellFormed(item));
  }
  return true;
}

/** How deep arrays and objects nest in JSON text, brackets inside strings not counted. */
function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** One schema violation as TypeBox reports it; a union's holds each variant's own. */
interface Violation {
  path?: string;
  message?: string;
  errors?: Iterable<Violation>[];
}

/**
 * A union's own violation says only that no variant matched; when a variant's violations lie
 * inside the value, the first of them names the field that is wrong (`rateLimit.max`, not
 * `rateLimit`).
 */
function innermost(violation: Violation | undefined): Violation | undefined {
  const path = violation?.path ?? "";
  for (const variant of violation?.errors ?? []) {
    for (const inner of variant) {
      if (inner.path?.startsWith(`${path}/`)) return innermost(inner);
    }
  }
  return violation;
}

/** Names the field and what is wrong with it: "body.options.ttl: Expected integer". */
function describeValidation(error: unknown): string {
  const e = error as { type?: string; customError?: unknown; all?: Violation[] };
  const first = innermost(e.all?.[0]);
  const part = ["body", "query", "params", "headers"].includes(e.type ?? "") ? e.type : "input";
  const what = typeof e.customError === "string" ? e.customError : first?.message;
  // Elysia checks coerced query numbers on their own, with no path: the schema's own error
  // text names the field then.
  if (part === "input" && typeof e.customError === "string") return e.customError;
  const where = `${part}${(first?.path ?? "").replaceAll("/", ".")}`;
  return `${where}: ${what ?? "is invalid"}`;
}
