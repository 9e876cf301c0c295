// The v1 errand routes: /v1/errands/… (the collection) and /v1/errand/:id (one errand).

import { Elysia, t } from "elysia";
import { parseGoDuration } from "../duration.ts";
import { BadInput, NotFound, RateLimited, retryAfterSeconds } from "../errors.ts";
import { handOver, type Waiters } from "../events/waiters.ts";
import { streamList } from "../paging.ts";
import type { ErrandFilter } from "../store/driver.ts";
import {
  type Ack,
  AckBody,
  type AckItem,
  BULK_MAX,
  BulkBody,
  BulkUpdateBody,
  ClearParams,
  CompleteBody,
  Errand,
  ErrandSpec,
  ErrorBody,
  errorBody,
  FailBody,
  HeartbeatBody,
  IdempotencyHeader,
  Integer,
  invalidDuration,
  KeyReused,
  ListKey,
  type ListOrder,
  ListQuery,
  LogBody,
  MAX_CLAIM_COUNT,
  OkAcks,
  OkBulk,
  OkClaimed,
  OkCount,
  OkOnly,
  OkPage,
  OkScheduledPage,
  ok,
  Paging,
  ProgressBody,
  ScheduledQuery,
  type Status,
} from "./model.ts";
import type { BulkChange, ErrandService, Filter, Selection } from "./service.ts";

const Id = t.Object({ id: t.String() });
const waitMs = (seconds: number | undefined) =>
  seconds === undefined ? undefined : seconds * 1000;
const typeMissing = () => new BadInput("Invalid request", "the errand type to claim is missing");
const Wait = t.Numeric({
  exclusiveMinimum: 0,
  maximum: 60,
  description: "Seconds to hold the claim while no errand waits (long poll)",
  error: "wait must be a number of seconds, more than 0 and at most 60",
});
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody } as const;
const createRefused = errorBody(
  "The body breaks its schema (the field is named), `options.runAt` and `options.delay` both given, or the Idempotency-Key is empty or longer than 255 characters",
);
const bulkAnswers = {
  200: OkBulk,
  400: errorBody(
    'The body is not exactly one of `{"ids":[…]}` (1 to 1000 ids) and `{"filter":{…},"after"?:id}`, or a field of it is wrong (it is named): a status that is none, an empty type, a key the filter does not take',
  ),
} as const;

/** How a bulk action reads, from the rule of the single-errand route it applies. */
const bulkDescription = (rule: string) =>
  `Body \`{"ids":[…]}\` (1 to ${BULK_MAX} ids) or \`{"filter":{"status"?:S,"type"?:T},"after"?:id}\` (\`{}\` is every errand). With a filter, takes the first ${BULK_MAX} matching errands with an id after \`after\`, in id order. ${rule} One transaction: every change or, on a failure, none. Answers \`{"status":"OK","count":n,"skipped":n,"next":id|null}\`; \`next\` is the last id examined while more may match: send the same filter with \`"after":next\` until it is null. With \`ids\`, \`next\` is null and an unknown id counts as skipped.`;

const claimAnswers = {
  400: errorBody("The type is missing, or `wait` is not a number of seconds in (0, 60]"),
  404: t.Object(
    {
      ...ErrorBody.properties,
      retryAfterMs: t.Optional(
        Integer({
          description:
            "When the type's rate limit held the claim back: ms until the next claim may start (also the `Retry-After` header, in seconds rounded up)",
        }),
      ),
    },
    {
      description:
        "No jobs: no errand of the type can be claimed (none waits, paused, at its concurrency, or at its rate limit: then with `retryAfterMs`)",
      examples: [
        {
          message: "No jobs",
          error: "rate limit 10 per 1000 ms reached; next claim possible in 230 ms",
          retryAfterMs: 230,
        },
      ],
    },
  ),
} as const;

const ackRefused = errorBody(
  "The body breaks its schema (the field is named: no items, more than 1000, an item without an id), or an item holds both or neither of `completed` and `failed`",
);

export function errandRoutes(errands: ErrandService, waiters: Waiters) {
  /**
   * The whole list as v1 answered it (oldest first unless `order` says), streamed page by page;
   * or one page with ?limit.
   */
  const list = (filter: Filter, query: { limit?: number; after?: string; order?: ListOrder }) => {
    const order = query.order ?? "oldest";
    if (query.limit === undefined) {
      return streamList(errands.pages(filter, order, query.after ?? ""));
    }
    return errands
      .page(filter, order, query.after ?? "", query.limit)
      .then((page) => ({ status: "OK" as const, results: page.errands, next: page.next }));
  };

  /**
   * Claims now, or with `wait` holds the request until an errand comes or time runs out. An
   * errand claimed for a client that has gone away by the time it is on disk goes back to the
   * queue.
   */
  // The request's abort signal is taken only when there is an errand or a wait: Bun makes one
  // per request asked, which costs a few microseconds.
  // The type is never empty: the router needs a segment, the query's schema a character.
  const claim = async (type: string, wait: number | undefined, signal: () => AbortSignal) => {
    const { errands, held } = await waiters.claim(type, waitMs(wait), signal);
    const [errand] = errands;
    if (errand) return { status: "OK" as const, results: errand };
    if (held) throw new RateLimited(held, held.retryAfterMs);
    throw new NotFound("No jobs", `no errand of type ${JSON.stringify(type)} waits`);
  };

  return new Elysia({ tags: ["errands"] })
    .post(
      "/v1/errands",
      async ({ body, headers }) => ({
        status: "OK",
        results: await errands.create(body, headers["idempotency-key"]),
      }),
      {
        body: ErrandSpec,
        headers: IdempotencyHeader,
        response: { 200: ok(Errand), 400: createRefused, 409: KeyReused },
        detail: {
          summary: "Create an errand",
          description:
            "Emits `created`. With `options.runAt` or `options.delay` the errand is `scheduled` until then. With an `Idempotency-Key` header used in the last 24 h, answers the first result again instead of creating a duplicate (409 when the key came with another body).",
        },
      },
    )
    .get("/v1/errands", ({ query }) => list(listFilter(query), query), {
      query: ListQuery,
      response: {
        200: OkPage,
        400: errorBody(
          "`limit` is not a whole number from 1 to 10000, `order` is neither `oldest` nor `newest`, `status` is not a status, `name` or `type` is empty, or `name` comes with `status` or `type`",
        ),
      },
      detail: {
        summary: "List errands",
        description:
          "Every errand in creation order, streamed; with `order=newest`, the newest first. With `status`, `type` or both, only the errands that match. With `name`, only the errands whose name starts with it (compared literally); not with `status` or `type`. With `limit`, one page; pass the answer's `next` as `after` for the following page (newest first, the errands created before it).",
      },
    })
    .get(
      "/v1/errands/scheduled",
      async ({ query }) => {
        const page = await errands.scheduledPage(query.after, query.limit);
        return { status: "OK" as const, results: page.errands, next: page.next };
      },
      {
        query: ScheduledQuery,
        response: {
          200: OkScheduledPage,
          400: errorBody(
            "`limit` is not a whole number from 1 to 10000, or `after` is not a `next` this list gave",
          ),
        },
        detail: {
          summary: "List scheduled errands, soonest first",
          description:
            "Errands waiting for `options.runAt`, `options.delay` or a backoff, in the order they come due (then by id), one page at a time (100 unless `limit` says). Pass the answer's `next` as `after` for the following page; `next` is null on the last.",
        },
      },
    )
    .get(
      "/v1/errands/list/:key/:val",
      ({ params, query }) => list(byKey(params.key, params.val), query),
      {
        params: t.Object({ key: ListKey, val: t.String() }),
        query: Paging,
        response: { 200: OkPage, 400: ErrorBody },
        detail: { summary: "List errands by status or type" },
      },
    )
    .post(
      "/v1/errands/process/:type",
      ({ params, query, request }) => claim(params.type, query.wait, () => request.signal),
      {
        params: t.Object({ type: t.String() }),
        query: t.Object({ wait: t.Optional(Wait) }),
        response: { 200: ok(Errand), ...claimAnswers },
        detail: {
          summary: "Claim the next errand of a type",
          description:
            "Highest priority first, then the oldest. Sets it active, attempts + 1, logs `Started!`, emits `processing`. 404 `No jobs` when none can be claimed; when the type's rate limit is why, the answer has `retryAfterMs` and a `Retry-After` header (seconds, rounded up). With `?wait=S` (0 < S ≤ 60), holds the request until an errand of the type is queued (or the rate limit lets a claim start), first come first served, or answers 404 after S seconds.",
        },
      },
    )
    .post(
      "/v1/errands/process",
      ({ query, request }) => claim(query.type, query.wait, () => request.signal),
      {
        query: t.Object({
          type: t.String({
            minLength: 1,
            description: "The errand type to claim",
            // v1 clients know this answer; Elysia's own would name the schema instead.
            error: typeMissing,
          }),
          wait: t.Optional(Wait),
        }),
        response: { 200: ok(Errand), ...claimAnswers },
        detail: { summary: "Claim the next errand of a type (older clients' form)" },
      },
    )
    .post(
      "/v1/errands/claim/:type",
      async ({ params, query, request, set }) => {
        const { errands, held } = await waiters.claimMany(
          params.type,
          query.count ?? 1,
          waitMs(query.wait),
          () => request.signal,
        );
        if (!held) return { status: "OK" as const, results: errands };
        set.headers["retry-after"] = retryAfterSeconds(held.retryAfterMs);
        return { status: "OK" as const, results: errands, retryAfterMs: held.retryAfterMs };
      },
      {
        params: t.Object({ type: t.String() }),
        query: t.Object({
          count: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: MAX_CLAIM_COUNT,
              description: `Most errands to claim, 1 to ${MAX_CLAIM_COUNT}; 1 when not given`,
              error: `count must be a whole number from 1 to ${MAX_CLAIM_COUNT}`,
            }),
          ),
          wait: t.Optional(Wait),
        }),
        response: {
          200: OkClaimed,
          400: errorBody(
            `\`count\` is not a whole number from 1 to ${MAX_CLAIM_COUNT}, or \`wait\` is not a number of seconds in (0, 60]`,
          ),
        },
        detail: {
          summary: "Claim up to `count` errands of a type at once",
          description:
            "In one transaction, in the order single claims take them (highest priority first, then the oldest), each as a single claim changes it (active, attempts + 1, `Started!`, event `processing`); no more than the type's free slots under its concurrency limit, nor than its rate limit lets start, none while it is paused. Answers `[]` when none can be claimed; when the rate limit is why, with `retryAfterMs` and a `Retry-After` header. With `?wait=S` (0 < S ≤ 60) and none to claim, waits in line with single long-poll claims and answers as soon as any errand of the type can be claimed (then as many as can, up to `count`), or `[]` after S seconds.",
        },
      },
    )
    .post(
      "/v1/errands/ack",
      async ({ body }) => {
        const outcomes = await errands.ack(body.items.map(ackItem));
        return {
          status: "OK" as const,
          results: outcomes.map((outcome) =>
            "errand" in outcome
              ? { id: outcome.id, status: 200 as const, errand: outcome.errand }
              : {
                  id: outcome.id,
                  status: outcome.error instanceof NotFound ? (404 as const) : (409 as const),
                  error: { message: outcome.error.message, error: outcome.error.detail },
                },
          ),
        };
      },
      {
        body: AckBody,
        response: { 200: OkAcks, 400: ackRefused },
        detail: {
          summary: "Complete or fail up to 1000 errands at once",
          description:
            'Each item `{"id","attempt"?,"completed":{"results"?}}` or `{"id","attempt"?,"failed":{"reason"}}`, all in one transaction, each under the rules of `PUT /v1/errand/:id/completed` or `…/failed` (results, retries and backoff, pipeline dependents unblocked, events). Answers every item\'s outcome in order: 200 with the errand, or 404 (unknown), or 409 (attempt superseded, blocked, or an id an earlier item already named); a refused item changes nothing and the others stand.',
        },
      },
    )
    .post(
      "/v1/errands/batch",
      async ({ body, headers }) => ({
        status: "OK" as const,
        results: await errands.createMany(body.errands, headers["idempotency-key"]),
      }),
      {
        headers: IdempotencyHeader,
        body: t.Object(
          { errands: t.Array(ErrandSpec, { minItems: 1, maxItems: 1000 }) },
          { additionalProperties: true },
        ),
        response: { 200: ok(t.Array(Errand)), 400: createRefused, 409: KeyReused },
        detail: {
          summary: "Create up to 1000 errands at once",
          description:
            "All or none, in one transaction. Emits `created` for each. One invalid errand (its index is named) refuses the batch with 400 and creates none; `runAt` and `delay` exclude each other in each. With an `Idempotency-Key` header used in the last 24 h, answers the first result again (409 when the key came with another body).",
        },
      },
    )
    .post(
      "/v1/errands/update/:key/:val",
      async ({ params, body }) => {
        const change = bulkChange(body);
        const filter = byKey(params.key, params.val);
        return { status: "OK" as const, count: await errands.updateWhere(filter, change) };
      },
      {
        params: t.Object({ key: ListKey, val: t.String() }),
        body: BulkUpdateBody,
        response: {
          200: OkCount,
          400: errorBody(
            'The key is not status or type, or the body is not exactly one of {"status":S} and {"delete":true}, or S is not a status or is `scheduled`',
          ),
        },
        detail: {
          summary: "Set the status of, or delete, every matching errand",
          description:
            'Body `{"status":S}` or `{"delete":true}`, exactly one of the two (both, neither, or `scheduled`: 400); one transaction. Errands of a pipeline are not deleted here: they go with their pipeline.',
        },
      },
    )
    .post(
      "/v1/errands/retry",
      async ({ body }) => ({
        status: "OK" as const,
        ...(await errands.retryMany(bulkSelection(body))),
      }),
      {
        body: BulkBody,
        response: bulkAnswers,
        detail: {
          summary: "Retry errands by id, or a batch of those a filter matches",
          description: bulkDescription(
            "Each gets the rule of `POST /v1/errand/:id/retry` and its `retry` event; one it refuses (inactive, blocked or scheduled: already queued) is skipped.",
          ),
        },
      },
    )
    .post(
      "/v1/errands/delete",
      async ({ body }) => ({
        status: "OK" as const,
        ...(await errands.removeMany(bulkSelection(body))),
      }),
      {
        body: BulkBody,
        response: bulkAnswers,
        detail: {
          summary: "Delete errands by id, or a batch of those a filter matches",
          description: bulkDescription(
            "Each gets the rule of `DELETE /v1/errand/:id` and its `deleted` event; an errand of a pipeline is skipped (it goes with its pipeline).",
          ),
        },
      },
    )
    .post(
      "/v1/errands/clear/:duration",
      async ({ params }) => {
        const age = parseGoDuration(params.duration);
        // The pattern passed: only a sum too large to be a number is left to refuse.
        if (age === null) throw invalidDuration(params.duration);
        return streamList(await errands.clear(age));
      },
      {
        params: ClearParams,
        response: {
          200: ok(t.Array(Errand)),
          400: errorBody("Invalid duration: not Go duration syntax, too large, or negative"),
        },
        detail: {
          summary: "Delete errands finished more than a duration ago",
          description:
            "Completed and failed errands; Go duration syntax (`90s`, `1h30m`). Errands of a pipeline go with their whole pipeline, once it has settled (completed, or failed with nothing left to run) more than the duration ago. Deletes about 1000 errands per transaction, so the queue keeps serving; answers the deleted errands, streamed, each batch once it is on disk, and emits `deleted` for each. A batch that fails after the first cuts the answer short.",
        },
      },
    )
    .get(
      "/v1/errand/:id",
      async ({ params }) => ({ status: "OK" as const, results: await errands.get(params.id) }),
      {
        params: Id,
        response: { 200: ok(Errand), 404: ErrorBody },
        detail: { summary: "Get an errand" },
      },
    )
    .put(
      "/v1/errand/:id",
      async ({ params, body }) => ({
        status: "OK" as const,
        results: await errands.progress(params.id, body.progress, body.attempt),
      }),
      {
        params: Id,
        body: ProgressBody,
        response: { 200: ok(Errand), ...errors },
        detail: {
          summary: "Update the progress of an active errand",
          description: "Emits `updated`.",
        },
      },
    )
    .post(
      "/v1/errand/:id/log",
      async ({ params, body }) => ({
        status: "OK" as const,
        results: await errands.log(params.id, body.severity, body.message, body.attempt),
      }),
      {
        params: Id,
        body: LogBody,
        response: { 200: ok(Errand), ...errors },
        detail: { summary: "Append a log entry to an active errand" },
      },
    )
    .put(
      "/v1/errand/:id/failed",
      async ({ params, body }) => ({
        status: "OK" as const,
        results: await errands.fail(params.id, body.reason, body.attempt),
      }),
      {
        params: Id,
        body: FailBody,
        response: { 200: ok(Errand), ...errors },
        detail: {
          summary: "Fail an errand",
          description:
            "Logs the reason as ERROR. Re-queued (inactive) while attempts ≤ options.retries, else failed. Emits `failed`.",
        },
      },
    )
    .put(
      "/v1/errand/:id/completed",
      async ({ params, body, query, request }) => {
        if (query.next !== "true") {
          return {
            status: "OK" as const,
            results: await errands.complete(params.id, body.results, body.attempt),
          };
        }
        // Taken before the write: the client may go away while it commits.
        const signal = request.signal;
        const { completed, next } = await errands.completeAndClaim(
          params.id,
          body.results,
          body.attempt,
        );
        const handed =
          next && ((await handOver(errands, [next], Promise.resolve(), signal))[0] ?? null);
        return { status: "OK" as const, results: completed, next: handed };
      },
      {
        params: Id,
        query: t.Object({
          next: t.Optional(
            t.Union([t.Literal("true"), t.Literal("false")], {
              description: "`true`: also claim the next errand of the same type",
            }),
          ),
        }),
        body: CompleteBody,
        response: {
          200: t.Object({
            status: t.Literal("OK"),
            results: Errand,
            next: t.Optional(t.Union([Errand, t.Null()])),
          }),
          ...errors,
        },
        detail: {
          summary: "Complete an errand",
          description:
            "Stores `results`, progress 100, logs `Completed!`. Emits `completed`. With `?next=true`, also claims the next errand of the same type in the same transaction and answers it as `next` (null when none waits).",
        },
      },
    )
    .post(
      "/v1/errand/:id/heartbeat",
      async ({ params, body }) => ({
        status: "OK" as const,
        results: await errands.heartbeat(params.id, body.attempt),
      }),
      {
        params: Id,
        body: HeartbeatBody,
        response: { 200: ok(Errand), ...errors },
        detail: {
          summary: "Tell the server the worker of an active errand is alive",
          description:
            "Pushes the errand's heartbeat deadline (`options.heartbeat` seconds) on; progress and log calls count too. Emits no event. 409 when the errand is not active, or not at the `attempt` sent.",
        },
      },
    )
    .post(
      "/v1/errand/:id/retry",
      async ({ params }) => ({ status: "OK" as const, results: await errands.retry(params.id) }),
      {
        params: Id,
        response: { 200: ok(Errand), ...errors },
        detail: { summary: "Queue an errand again", description: "Emits `retry`." },
      },
    )
    .delete(
      "/v1/errand/:id",
      async ({ params }) => {
        await errands.remove(params.id);
        return { status: "OK" as const };
      },
      {
        params: Id,
        response: { 200: OkOnly, 409: ErrorBody },
        detail: {
          summary: "Delete an errand",
          description: "200 also when the id is unknown (v1). Emits `deleted`.",
        },
      },
    );
}

/** A name prefix alone, or a status and a type: no index serves a prefix within them. */
function listFilter(query: { name?: string; status?: Status; type?: string }): Filter {
  if (query.name === undefined) return { status: query.status, type: query.type };
  if (query.status !== undefined || query.type !== undefined) {
    throw new BadInput(
      "Invalid request",
      "query.name: a name prefix does not combine with status or type (no index serves them together)",
    );
  }
  return { name: query.name };
}

/** The filter of list/:key/:val and update/:key/:val. */
function byKey(key: "status" | "type", value: string): ErrandFilter {
  return key === "status" ? { status: value } : { type: value };
}

/** Exactly one of {"ids":[…]} and {"filter":{…},"after"?:id}. */
function bulkSelection(body: BulkBody): Selection {
  if (body.ids !== undefined) {
    if (body.filter !== undefined) {
      throw new BadInput("Invalid request", "body.filter: send ids or a filter, not both");
    }
    if (body.after !== undefined) {
      throw new BadInput("Invalid request", "body.after: goes with a filter, not with ids");
    }
    return { ids: body.ids };
  }
  if (body.filter === undefined) {
    throw new BadInput("Invalid request", "body.ids: send ids or a filter (one of the two)");
  }
  return { filter: body.filter, after: body.after ?? "" };
}

/** An item of an ack holds exactly one of `completed` and `failed`. */
function ackItem(item: AckItem, index: number): Ack {
  if (item.completed !== undefined && item.failed === undefined) {
    return { ...item, completed: item.completed, failed: undefined };
  }
  if (item.failed !== undefined && item.completed === undefined) {
    return { ...item, completed: undefined, failed: item.failed };
  }
  throw new BadInput(
    "Invalid request",
    `body.items.${index}: exactly one of completed and failed is needed`,
  );
}

/** Exactly one of {"status":S} and {"delete":true}. */
function bulkChange(body: { status?: Status; delete?: boolean }): BulkChange {
  if (body.status !== undefined && body.delete === undefined) return { status: body.status };
  if (body.delete === true && body.status === undefined) return { delete: true };
  throw new BadInput(
    "Invalid request",
    'the body must be either {"status":<a status>} or {"delete":true}',
  );
}
