// Schemas of schedules (recurring errands) and of their routes' bodies.

import { type Static, t } from "elysia";
import { ErrandSpec, Integer, TYPE_PATTERN } from "../errands/model.ts";
import { MIN_EVERY_MS } from "./ticks.ts";

/** The longest interval: a year. */
const MAX_EVERY_MS = 31_536_000_000;

export const ScheduleName = t.String({
  minLength: 1,
  maxLength: 255,
  pattern: TYPE_PATTERN,
  description: "The schedule's name, its key",
  error: "the schedule name must be 1 to 255 characters, with no control characters",
});

export const Overlap = t.Union([t.Literal("allow"), t.Literal("skip")], {
  description:
    "`skip`: a tick creates no errand while the schedule's previous one is not yet completed or failed (deleted counts as finished)",
  error: "overlap must be allow or skip",
});

export const ScheduleBody = t.Object(
  {
    cron: t.Optional(
      t.String({
        maxLength: 255,
        description:
          "Cron expression: 5 fields, or 6 with seconds first; names (MON, JAN), `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. Not with `every`",
        error: "cron must be a string of at most 255 characters",
      }),
    ),
    every: t.Optional(
      Integer({
        minimum: MIN_EVERY_MS,
        maximum: MAX_EVERY_MS,
        description: "Ms between ticks, the first `every` after the PUT. Not with `cron`",
        error: `every must be a whole number of ms from ${MIN_EVERY_MS} (a second) to ${MAX_EVERY_MS} (a year)`,
      }),
    ),
    timezone: t.Optional(
      t.String({
        maxLength: 100,
        description: "IANA time zone the cron expression is read in; UTC when left out",
        error: "timezone must be a string of at most 100 characters",
      }),
    ),
    errand: ErrandSpec,
    paused: t.Optional(t.Boolean({ description: "A paused schedule does not tick" })),
    overlap: t.Optional(Overlap),
  },
  {
    additionalProperties: true,
    description:
      "Exactly one of `cron` and `every`. `errand` is what a create takes (`POST /v1/errands/`). Fields left out take their defaults: `paused` false, `overlap` allow.",
    examples: [
      {
        cron: "30 2 * * *",
        timezone: "Europe/London",
        errand: { name: "Nightly report", type: "report", options: { retries: 2 } },
      },
      { every: 60_000, errand: { name: "Poll feeds", type: "poll" }, overlap: "skip" },
    ],
  },
);
export type ScheduleBody = Static<typeof ScheduleBody>;

export const Schedule = t.Object(
  {
    name: t.String(),
    cron: t.Optional(t.String()),
    timezone: t.Optional(t.String({ description: "With `cron`: the time zone it is read in" })),
    every: t.Optional(Integer()),
    errand: ErrandSpec,
    paused: t.Boolean(),
    overlap: Overlap,
    nextRunAt: t.Union([Integer(), t.Null()], {
      description: "The next tick (ms since the epoch); null while paused",
    }),
    lastRunAt: t.Union([Integer(), t.Null()], {
      description: "The tick its last errand was created for; null before the first",
    }),
    lastErrandId: t.Union([t.String(), t.Null()], { description: "Its last errand's id" }),
    created: Integer(),
    updated: Integer({ description: "When it was last PUT" }),
  },
  {
    examples: [
      {
        name: "nightly-report",
        cron: "30 2 * * *",
        timezone: "Europe/London",
        errand: { name: "Nightly report", type: "report", options: { retries: 2 } },
        paused: false,
        overlap: "allow",
        nextRunAt: 1767234600000,
        lastRunAt: 1767148200000,
        lastErrandId: "019b7a1e-5e40-7c3d-9a51-0c2f3b4d5e6f",
        created: 1767000000000,
        updated: 1767000000000,
      },
    ],
  },
);
export type Schedule = Static<typeof Schedule>;
