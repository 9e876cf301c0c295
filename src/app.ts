// Builds the HTTP app over a store: the error envelope, the modules, and the background sweep.

import { Elysia } from "elysia";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { errandRoutes } from "./errands/routes.ts";
import { ErrandService } from "./errands/service.ts";
import { BadInput, DomainError } from "./errors.ts";
import { EventBus } from "./events/bus.ts";
import { type Logger, silentLogger } from "./ops/log.ts";
import type { Store } from "./store/db.ts";
import { EventWrites } from "./store/events.ts";

export interface AppDeps {
  store: Store;
  clock: Clock;
  config: Config;
  logger?: Logger;
}

export function createApp(deps: AppDeps) {
  const { store, clock, config } = deps;
  const logger = deps.logger ?? silentLogger;
  const bus = new EventBus(new EventWrites(store.writer), () => clock.now());
  const errands = new ErrandService({
    store,
    clock,
    bus,
    maxLogs: config.maxLogs,
    onExpired: (errand) =>
      logger.info("errand expired", { id: errand.id, type: errand.type, status: errand.status }),
  });

  // normalize: false — bodies are validated as sent, never coerced (an array is not an object).
  const app = new Elysia({ normalize: false })
    .onParse(async ({ request }) => parseJsonBody(request))
    .onError(({ code, error, set, request }) => {
      const answer = toErrorAnswer(code, error);
      if (answer.status >= 500 && answer.status !== 503) {
        logger.error("request failed", {
          method: request.method,
          url: request.url,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        });
      }
      set.status = answer.status;
      return answer.body;
    })
    .use(errandRoutes(errands));

  /** One pass of the background checks: TTL expiry. */
  const sweep = async () => {
    await errands.expireOverdue();
  };

  return { app, bus, errands, sweep };
}

export type App = ReturnType<typeof createApp>;

interface ErrorAnswer {
  status: number;
  body: { message: string; error: string };
}

/** Maps anything thrown while handling a request to a status and the error envelope. */
function toErrorAnswer(code: string | number, error: unknown): ErrorAnswer {
  if (error instanceof DomainError) {
    return { status: error.status, body: { message: error.message, error: error.detail } };
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

/** Every body is JSON, whatever its Content-Type says (v1 read it so); empty means none. */
async function parseJsonBody(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new BadInput("Malformed body", "the body is not valid JSON");
  }
}

/** Names the field and what is wrong with it: "body.options.ttl: Expected integer". */
function describeValidation(error: unknown): string {
  const e = error as {
    type?: string;
    customError?: unknown;
    all?: Array<{ path?: string; message?: string }>;
  };
  const first = e.all?.[0];
  const where = `${e.type ?? "input"}${(first?.path ?? "").replaceAll("/", ".")}`;
  const what = typeof e.customError === "string" ? e.customError : first?.message;
  return `${where}: ${what ?? "is invalid"}`;
}
