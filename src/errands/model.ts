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

/** GET /v1/errands: the paging of every list, and a name prefix. */
export const ListQuery = t.Object({
  ...Paging.properties,
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
