// Schemas of the per-type controls, summaries and history.

import { type Static, t } from "elysia";
import { Integer } from "../errands/model.ts";
import { HISTORY_MINUTES } from "./history.ts";

/** The longest window a rate limit counts in: a day. */
export const MAX_RATE_WINDOW_MS = 86_400_000;

export const RateLimit = t.Object(
  {
    max: Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: "Most claims of the type that start in any window of `perMs`",
    }),
    perMs: Integer({
      minimum: 1,
      maximum: MAX_RATE_WINDOW_MS,
      description: "The window, in ms: 1 to 86400000 (a day)",
    }),
  },
  {
    additionalProperties: true,
    description:
      "At most `max` claims of the type start in any `perMs` ms, across all workers and instances",
    examples: [{ max: 10, perMs: 1000 }],
  },
);

export const TypeControls = t.Object(
  {
    paused: t.Optional(t.Boolean({ description: "A paused type answers claims with No jobs" })),
    concurrency: t.Optional(
      t.Union([Integer({ minimum: 1, maximum: 1_000_000 }), t.Null()], {
        description: "At most this many errands of the type active at once; null for no limit",
      }),
    ),
    rateLimit: t.Optional(
      t.Union([RateLimit, t.Null()], {
        description:
          "At most `max` claims of the type start in any window of `perMs` ms; null for no limit",
      }),
    ),
  },
  {
    additionalProperties: true,
    examples: [{ paused: false, concurrency: 4, rateLimit: { max: 10, perMs: 1000 } }],
  },
);
export type TypeControls = Static<typeof TypeControls>;

export const TypeSummary = t.Object(
  {
    type: t.String(),
    counts: t.Record(t.String(), Integer(), { description: "Errands by status" }),
    oldestWaitingMs: t.Union([Integer(), t.Null()], {
      description: "Age of the oldest inactive errand, in ms; null when none waits",
    }),
    paused: t.Boolean(),
    concurrency: t.Union([Integer(), t.Null()]),
    rateLimit: t.Union([RateLimit, t.Null()]),
    claimsInWindow: t.Union([Integer(), t.Null()], {
      description:
        "Under a rate limit, the claims started in the last `perMs` ms (the allowance left is `max` minus this); null without one",
    }),
  },
  {
    examples: [
      {
        type: "extract",
        counts: { inactive: 12, active: 3, completed: 240 },
        oldestWaitingMs: 5400,
        paused: false,
        concurrency: 4,
        rateLimit: { max: 10, perMs: 1000 },
        claimsInWindow: 7,
      },
    ],
  },
);
export type TypeSummary = Static<typeof TypeSummary>;

export const HistoryQuery = t.Object({
  // Query strings are text: Elysia's t.Integer reads "60" as 60.
  minutes: t.Integer({
    minimum: 1,
    maximum: HISTORY_MINUTES,
    default: 60,
    description: `Minutes answered, the current one last; 60 when not given, at most ${HISTORY_MINUTES} (24 h)`,
    error: `minutes must be a whole number from 1 to ${HISTORY_MINUTES}`,
  }),
  type: t.Optional(
    t.String({
      minLength: 1,
      maxLength: 255,
      description: "Only this type's counts; without it, every type's summed",
      error: "type must be 1 to 255 characters",
    }),
  ),
});

export const HistoryMinute = t.Object(
  {
    minute: Integer({ description: "The minute's start, ms since the epoch" }),
    completed: Integer({ description: "`completed` events in the minute" }),
    failed: Integer({
      description: "`failed` events in the minute: every failed attempt, re-queued ones included",
    }),
    waiting: t.Union([Integer(), t.Null()], {
      description:
        "Inactive errands as sampled in the minute; null when no sample was taken (no server running)",
    }),
  },
  { examples: [{ minute: 1767225600000, completed: 42, failed: 3, waiting: 17 }] },
);
