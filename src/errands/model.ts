// Schemas of errands and of the errand routes' bodies; TypeScript types derive from them.

import { Type } from "@sinclair/typebox";
import { type Static, t } from "elysia";
import { GO_DURATION_PATTERN } from "../duration.ts";
import { BadInput } from "../errors.ts";
import type { Status as StoredStatus } from "../store/records.ts";

// Elysia's t.Integer also accepts numeric strings; a queue's bodies take JSON integers only.
export const Integer = Type.Integer;

/** Request bodies ignore fields they do not name, as v1 did. */
const lenient = { additionalProperties: true } as const;

export type Status = StoredStatus;

export const JsonObject = t.Record(t.String(), t.Unknown(), {
  description: "Any JSON object",
  examples: [{ file: "s3://bucket/key" }],
});

export const Status = t.Union(
  [
    t.Literal("blocked"),
    t.Literal("inactive"),
    t.Literal("active"),
    t.Literal("failed"),
    t.Literal("completed"),
    t.Literal("scheduled"),
  ],
  {
    description: "blocked, inactive, active, failed, completed or scheduled",
    error: "the status must be blocked, inactive, active, failed, completed or scheduled",
  },
);

export const Severity = t.Union([t.Literal("INFO"), t.Literal("WARNING"), t.Literal("ERROR")]);

export const ErrandOptions = t.Object(
  {
    ttl: t.Optional(
      Integer({
        minimum: 0,
        description: "Minutes an active errand may run before it is failed; 0 = no limit",
      }),
    ),
    retries: t.Optional(
      Integer({ minimum: 0, maximum: 1_000_000, description: "Re-queues after a failure" }),
    ),
    priority: t.Optional(
      Integer({
        minimum: -Number.MAX_SAFE_INTEGER,
        maximum: Number.MAX_SAFE_INTEGER,
        description: "Higher is claimed first",
      }),
    ),
    deleteOnCompleted: t.Optional(t.Boolean()),
    heartbeat: t.Optional(
      Integer({
        minimum: 5,
        maximum: 86_400,
        description:
          "Seconds an active errand may go unheard (claim, progress, log, heartbeat) before it fails with `Heartbeat timeout`",
      }),
    ),
    runAt: t.Optional(
      Integer({
        minimum: 0,
        maximum: 8_640_000_000_000_000,
        description:
          "Run no earlier than this time (ms since the epoch): the errand is scheduled. Not with `delay` (400)",
      }),
    ),
    delay: t.Optional(
      Integer({
        minimum: 0,
        maximum: 31_536_000_000,
        description:
          "Run no earlier than this many ms after creation: the errand is scheduled. Not with `runAt` (400)",
      }),
    ),
    backoff: t.Optional(
      t.Object(
        {
          type: t.Union([t.Literal("fixed"), t.Literal("exponential")], {
            error: "backoff.type must be fixed or exponential",
          }),
          delay: Integer({ minimum: 1, maximum: 31_536_000_000 }),
        },
        {
          description:
            "Wait before a failure re-queues: `delay` ms (fixed) or delay·2^(attempts-1), capped at 1 h (exponential)",
        },
      ),
    ),
  },
  {
    // Exclusive fields are beyond what the schema says; the service refuses both with a 400.
    description: "All optional. `runAt` and `delay` exclude each other: send one or neither.",
    examples: [{ ttl: 60, retries: 2, priority: 500 }],
  },
);
export type ErrandOptions = Static<typeof ErrandOptions>;

export const Log = t.Object({
  severity: Severity,
  message: t.String(),
  timestamp: Integer(),
});
export type Log = Static<typeof Log>;

export const Errand = t.Object(
  {
    id: t.String(),
    name: t.String(),
    type: t.String(),
    options: ErrandOptions,
    data: t.Optional(JsonObject),
    created: Integer({ description: "ms since the Unix epoch" }),
    status: Status,
    results: t.Optional(JsonObject),
    progress: t.Number(),
    attempts: Integer(),
    started: t.Optional(Integer()),
    failed: t.Optional(Integer()),
    completed: t.Optional(Integer()),
    logs: t.Optional(t.Array(Log)),
    pipeline: t.Optional(t.String()),
    runAt: t.Optional(
      Integer({
        description: "While scheduled (or blocked with a time to wait): when it comes due",
      }),
    ),
    ttlDeadline: t.Optional(
      Integer({ description: "While active with `options.ttl`: when it fails with TTL Expired" }),
    ),
    heartbeatDeadline: t.Optional(
      Integer({
        description:
          "While active with `options.heartbeat`: when its worker must next be heard from",
      }),
    ),
    dependencyResults: t.Optional(
      t.Record(t.String(), JsonObject, {
        description:
          "On a claim or get of a pipeline errand with dependencies: each dependency's results by its name ({} when it stored none)",
      }),
    ),
  },
  {
    examples: [
      {
        id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f",
        name: "Process file 7",
        type: "extract",
        options: { ttl: 60, retries: 2 },
        data: { file: "s3://bucket/key" },
        created: 1732600000000,
        status: "active",
        progress: 0,
        attempts: 1,
        started: 1732600001000,
        logs: [{ severity: "INFO", message: "Started!", timestamp: 1732600001000 }],
      },
    ],
  },
);
export type Errand = Static<typeof Errand>;

/**
 * No control characters (U+0000–U+001F, U+007F) in a new type: a type ends up in metrics
 * labels, logs and dashboards, where a NUL or a line break is never meant and breaks tools.
 */
export const TYPE_PATTERN = "^[^\\u0000-\\u001F\\u007F]*$";

/** The type of a new errand; 255 characters at most, as it is an index key. */
export const TypeName = t.String({
  minLength: 1,
  maxLength: 255,
  pattern: TYPE_PATTERN,
  error: "the type must be 1 to 255 characters, with no control characters",
});

export const ErrandSpec = t.Object(
  {
    name: t.String({ minLength: 1, maxLength: 1000 }),
    type: TypeName,
    options: t.Optional(ErrandOptions),
    data: t.Optional(JsonObject),
  },
  {
    ...lenient,
    examples: [{ name: "Process file 7", type: "extract", data: { file: "s3://bucket/key" } }],
  },
);
export type ErrandSpec = Static<typeof ErrandSpec>;

/** The attempt a worker claimed: when sent, a call for any other attempt is refused (409). */
const Attempt = t.Optional(
  Integer({ minimum: 1, description: "The attempt this worker holds (the claim's `attempts`)" }),
);

export const ProgressBody = t.Object(
  { progress: t.Number({ minimum: 0, maximum: 100 }), attempt: Attempt },
  lenient,
);
/** Longest log message or failure reason kept, in characters (the rest is cut, not refused). */
export const MAX_LOG_MESSAGE = 10_000;
const LogText = t.String({
  description: `Any length; its first ${MAX_LOG_MESSAGE.toLocaleString("en-US")} characters are kept`,
});
export const LogBody = t.Object(
  { severity: Severity, message: LogText, attempt: Attempt },
  lenient,
);
export const FailBody = t.Object({ reason: LogText, attempt: Attempt }, lenient);
// An empty body reads as {} (see app.ts): a worker completes with no results that way. Any
// other body must be an object, so a double-encoded one is refused, not read as {}.
export const CompleteBody = t.Object(
  { results: t.Optional(JsonObject), attempt: Attempt },
  lenient,
);
export const HeartbeatBody = t.Object({ attempt: Attempt }, lenient);

/** Most errands one batch claim takes. */
export const MAX_CLAIM_COUNT = 100;
/** Most items one ack takes, as many as one batch create. */
export const MAX_ACK_ITEMS = 1000;

export const AckItem = t.Object(
  {
    id: t.String({ minLength: 1, description: "The errand's id" }),
    attempt: Attempt,
    completed: t.Optional(
      t.Object(
        { results: t.Optional(JsonObject) },
        { ...lenient, description: "Complete the errand, as `PUT /v1/errand/:id/completed`" },
      ),
    ),
    failed: t.Optional(
      t.Object(
        { reason: LogText },
        { ...lenient, description: "Fail the errand, as `PUT /v1/errand/:id/failed`" },
      ),
    ),
  },
  { ...lenient, description: "Exactly one of `completed` and `failed`" },
);
export type AckItem = Static<typeof AckItem>;

/** An item of an ack once it is known to hold exactly one of `completed` and `failed`. */
export type Ack = Omit<AckItem, "completed" | "failed"> &
  (
    | { completed: NonNullable<AckItem["completed"]>; failed?: undefined }
    | { completed?: undefined; failed: NonNullable<AckItem["failed"]> }
  );

export const AckBody = t.Object(
  { items: t.Array(AckItem, { minItems: 1, maxItems: MAX_ACK_ITEMS }) },
  {
    ...lenient,
    examples: [
      {
        items: [
          {
            id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f",
            attempt: 1,
            completed: { results: { rows: 42 } },
          },
          { id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e90", attempt: 1, failed: { reason: "timeout" } },
        ],
      },
    ],
  },
);

export const ListKey = t.Union([t.Literal("status"), t.Literal("type")], {
  error: "the key must be status or type",
});
export type ListKey = Static<typeof ListKey>;

export const BulkUpdateBody = t.Object(
  { status: t.Optional(Status), delete: t.Optional(t.Boolean()) },
  {
    ...lenient,
    // "One or the other" is checked by the route: a schema union of lenient objects would
    // accept both at once.
    description:
      'Exactly one of `{"status":S}` (any status but `scheduled`) and `{"delete":true}`; anything else is 400.',
    examples: [{ status: "inactive" }, { delete: true }],
  },
);

export const Paging = t.Object({
  // Query strings are text: Elysia's t.Integer reads "50" as 50.
  limit: t.Optional(
    t.Integer({
      minimum: 1,
      maximum: 10_000,
      error: "limit must be a whole number from 1 to 10000",
    }),
  ),
  after: t.Optional(t.String({ maxLength: 64 })),
});

/** A type to look for: any text, since errands stored before TYPE_PATTERN may hold any. */
const TypeFilter = t.String({
  minLength: 1,
  description: "Only errands of this type",
  error: "type must not be empty",
});

/** Which way GET /v1/errands runs: creation order, the oldest or the newest first. */
export const ListOrder = t.Union([t.Literal("oldest"), t.Literal("newest")], {
  description:
    "`oldest` (the default) or `newest` first; `after` is in this order: newest first, the page holds the errands created before it",
  error: "order must be oldest or newest",
});
export type ListOrder = Static<typeof ListOrder>;

/**
 * GET /v1/errands: the paging of every list, a status and a type, or a name prefix, either
 * way.
 */
export const ListQuery = t.Object({
  ...Paging.properties,
  order: t.Optional(ListOrder),
  status: t.Optional(Status),
  type: t.Optional(TypeFilter),
  name: t.Optional(
    t.String({
      minLength: 1,
      maxLength: 1000,
      description:
        "Only errands whose name starts with this text, compared literally (`%`, `_`, `\\` and letters' case included)",
      error: "name must be a prefix of 1 to 1000 characters",
    }),
  ),
});

/** How many scheduled errands a page holds when the client does not say. */
export const SCHEDULED_PAGE = 100;

export const ScheduledQuery = t.Object({
  limit: t.Integer({
    minimum: 1,
    maximum: 10_000,
    default: SCHEDULED_PAGE,
    description: `Errands per page; ${SCHEDULED_PAGE} when not given`,
    error: "limit must be a whole number from 1 to 10000",
  }),
  after: t.Optional(
    t.String({
      maxLength: 100,
      description: "The `next` of the previous page (opaque)",
      error: "after must be the `next` of a page, at most 100 characters",
    }),
  ),
});

/** Most errands one bulk retry or delete takes: its ids, or a batch of its filter. */
export const BULK_MAX = 1000;

export const BulkBody = t.Object(
  {
    ids: t.Optional(
      t.Array(t.String(), {
        minItems: 1,
        maxItems: BULK_MAX,
        description: `1 to ${BULK_MAX} errand ids; an unknown one is skipped`,
        error: `ids must be an array of 1 to ${BULK_MAX} ids`,
      }),
    ),
    filter: t.Optional(
      t.Object(
        { status: t.Optional(Status), type: t.Optional(TypeFilter) },
        {
          // A misspelt key must not widen the filter to every errand.
          additionalProperties: false,
          description: "The errands of a status, a type, or both; `{}` is every errand",
        },
      ),
    ),
    after: t.Optional(
      t.String({
        maxLength: 64,
        description: "With `filter`: the `next` of the previous answer",
        error: "after must be the `next` of a previous answer, at most 64 characters",
      }),
    ),
  },
  {
    ...lenient,
    description: 'Exactly one of `{"ids":[…]}` and `{"filter":{…},"after"?:id}`.',
    examples: [{ ids: ["019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f"] }, { filter: { status: "failed" } }],
  },
);
export type BulkBody = Static<typeof BulkBody>;

export const OkBulk = t.Object(
  {
    status: t.Literal("OK"),
    count: Integer({ description: "Errands retried or deleted" }),
    skipped: Integer({ description: "Errands the rule refused, unknown ids, or gone meanwhile" }),
    next: t.Union([t.String(), t.Null()], {
      description:
        "With a filter: the last id examined when more may match (send it as `after`); null when the filter is exhausted, and always with `ids`",
    }),
  },
  {
    examples: [
      { status: "OK", count: 998, skipped: 2, next: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f" },
    ],
  },
);

export const ErrorBody = t.Object(
  { message: t.String(), error: t.Optional(t.String()) },
  { examples: [{ message: "Errand not found", error: "no errand has id 42" }] },
);

/** The error envelope as one route's answer for one status: the description says when. */
export const errorBody = (description: string) => t.Object(ErrorBody.properties, { description });

/** Idempotency-Key on creates (errand, batch, pipeline). */
export const IdempotencyHeader = t.Object({
  "idempotency-key": t.Optional(
    t.String({
      minLength: 1,
      maxLength: 255,
      description:
        "Repeating a create with the same key within 24 h answers the first result; the same key with another body is 409",
      error: "1 to 255 characters",
    }),
  ),
});

/** The 409 of a create that repeats an Idempotency-Key with another body. */
export const KeyReused = errorBody(
  "The Idempotency-Key was already used in the last 24 h with another route or body",
);

/** clear/:duration: a Go duration, refused with the answer v1 clients know. */
export const ClearParams = t.Object({
  duration: t.String({
    pattern: GO_DURATION_PATTERN,
    description: "Go duration syntax: `90s`, `1h30m`, `300ms`, `2h45m10s`; not negative",
    // `found` is all the params, in production builds too.
    error: ({ found }: { found?: unknown }) =>
      invalidDuration((found as { duration?: unknown } | undefined)?.duration),
  }),
});

export function invalidDuration(text: unknown): BadInput {
  return new BadInput(
    "Invalid duration",
    `${JSON.stringify(text)} is not a duration such as 90s, 1h30m or 300ms`,
  );
}

/** The v1 success envelope. */
export const ok = <T extends Parameters<typeof t.Object>[0][string]>(results: T) =>
  t.Object({ status: t.Literal("OK"), results });

export const OkOnly = t.Object({ status: t.Literal("OK") });
export const OkCount = t.Object({ status: t.Literal("OK"), count: Integer() });
export const OkPage = t.Object({
  status: t.Literal("OK"),
  results: t.Array(Errand),
  next: t.Optional(t.Union([t.String(), t.Null()])),
});
export const OkScheduledPage = t.Object({
  status: t.Literal("OK"),
  results: t.Array(Errand),
  next: t.Union([t.String(), t.Null()], {
    description: "`after` for the following page (`<runAt>:<id>`, opaque); null on the last",
  }),
});

/** The answer to a batch claim. */
export const OkClaimed = t.Object(
  {
    status: t.Literal("OK"),
    results: t.Array(Errand, { description: "The errands claimed, in claim order" }),
    retryAfterMs: t.Optional(
      Integer({
        description:
          "With `[]` when the type's rate limit is why: ms until the next claim may start (also the `Retry-After` header, in seconds rounded up)",
      }),
    ),
  },
  { description: "The errands claimed, at most `count`; `[]` when none could be claimed in time" },
);

/** The answer to an ack: each item's outcome, in the order sent. */
export const OkAcks = t.Object(
  {
    status: t.Literal("OK"),
    results: t.Array(
      t.Union([
        t.Object({ id: t.String(), status: t.Literal(200), errand: Errand }),
        t.Object({
          id: t.String(),
          status: t.Union([t.Literal(404), t.Literal(409)]),
          error: ErrorBody,
        }),
      ]),
      {
        description:
          "One per item, in order: `status` 200 with the `errand` after the change, or 404 (unknown errand) or 409 (attempt superseded, errand blocked, or named by an earlier item) with the `error` envelope; a refused item changed nothing",
      },
    ),
  },
  {
    description: "Every item's outcome, in the order sent",
    examples: [
      {
        status: "OK",
        results: [
          {
            id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f",
            status: 200,
            errand: {
              id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f",
              name: "Process file 7",
              type: "extract",
              options: {},
              created: 1732600000000,
              status: "completed",
              results: { rows: 42 },
              progress: 100,
              attempts: 1,
              started: 1732600001000,
              completed: 1732600002000,
              logs: [
                { severity: "INFO", message: "Started!", timestamp: 1732600001000 },
                { severity: "INFO", message: "Completed!", timestamp: 1732600002000 },
              ],
            },
          },
          {
            id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e90",
            status: 409,
            error: {
              message: "Attempt superseded",
              error:
                "errand 019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e90 is active at attempt 2, not active at attempt 1",
            },
          },
        ],
      },
    ],
  },
);
