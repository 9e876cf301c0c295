// Schemas of the per-type controls.

import { type Static, t } from "elysia";
import { Integer } from "../errands/model.ts";

export const TypeControls = t.Object(
  {
    paused: t.Optional(t.Boolean({ description: "A paused type answers claims with No jobs" })),
    concurrency: t.Optional(
      t.Union([Integer({ minimum: 1, maximum: 1_000_000 }), t.Null()], {
        description: "At most this many errands of the type active at once; null for no limit",
      }),
    ),
  },
  { additionalProperties: true, examples: [{ paused: false, concurrency: 4 }] },
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
  },
  {
    examples: [
      {
        type: "extract",
        counts: { inactive: 12, active: 3, completed: 240 },
        oldestWaitingMs: 5400,
        paused: false,
        concurrency: 4,
      },
    ],
  },
);
export type TypeSummary = Static<typeof TypeSummary>;
