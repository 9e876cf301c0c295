// GET /v1/types, GET /v1/types/history and PUT /v1/types/:type: the queue by type, its
// history by minute, and its controls.

import { Elysia, t } from "elysia";
import { errorBody, ok } from "../errands/model.ts";
import type { History } from "./history.ts";
import { HistoryMinute, HistoryQuery, TypeControls, TypeSummary } from "./model.ts";
import type { TypeService } from "./service.ts";

export function typeRoutes(types: TypeService, history: History) {
  return new Elysia({ tags: ["types"] })
    .get("/v1/types", async () => ({ status: "OK" as const, results: await types.list() }), {
      response: { 200: ok(t.Array(TypeSummary)) },
      detail: {
        summary:
          "Every type: errands by status, oldest waiting age, paused, concurrency, rate limit",
      },
    })
    .get(
      "/v1/types/history",
      async ({ query }) => ({
        status: "OK" as const,
        results: await history.minutes(query.minutes, query.type),
      }),
      {
        query: HistoryQuery,
        response: {
          200: ok(t.Array(HistoryMinute)),
          400: errorBody(
            "`minutes` is not a whole number from 1 to 1440, or `type` is empty or longer than 255 characters",
          ),
        },
        detail: {
          summary: "Completed, failed and waiting errands per minute, of one type or of all",
          description:
            "Exactly `minutes` entries (60 unless given, at most 1440), oldest first, the last being the current minute. `completed` and `failed` count the `completed` and `failed` events of the minute (every failed attempt, re-queued ones and TTL or heartbeat expiries included; a bulk update's status change is an `updated` event and not counted). `waiting` is the number of `inactive` errands sampled in the minute, null for a minute no server was running. Kept by the server as it goes, 24 h back, and up to a second behind.",
        },
      },
    )
    .put(
      "/v1/types/:type",
      async ({ params, body }) => ({
        status: "OK" as const,
        results: await types.set(params.type, body),
      }),
      {
        params: t.Object({ type: t.String({ minLength: 1, maxLength: 255 }) }),
        body: TypeControls,
        response: {
          200: ok(TypeSummary),
          400: errorBody(
            "A control is not of its kind (the field is named): `paused` not a boolean, `concurrency` not null nor a whole number from 1 to 1000000, `rateLimit` not null nor `max` 1 to 1000000 and `perMs` 1 to 86400000 (whole numbers)",
          ),
        },
        detail: {
          summary:
            "Pause a type, limit how many of its errands run at once, or how fast they start",
          description:
            'Body `{"paused":bool,"concurrency":n|null,"rateLimit":{"max":n,"perMs":ms}|null}`; a field left out keeps its value. A paused type, one with `concurrency` errands already active, or one whose rate limit has seen `max` claims start in the last `perMs` ms, answers claims with 404 `No jobs` (with `retryAfterMs` and `Retry-After` under the rate limit); a long-poll keeps waiting. The rate limit holds across all workers and instances. Stored: survives a restart.',
        },
      },
    );
}
