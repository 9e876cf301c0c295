// Schemas of pipelines and of the pipeline routes' bodies; TypeScript types derive from them.

import { type Static, t } from "elysia";
import { Errand, ErrandOptions, Integer, JsonObject, TYPE_PATTERN } from "../errands/model.ts";
import { BadInput } from "../errors.ts";
import type { PipelineStatus as StoredPipelineStatus } from "../store/records.ts";
import { VALIDATION_FAILED } from "./graph.ts";

/** Request bodies ignore fields they do not name, as v1 did. */
const lenient = { additionalProperties: true } as const;

export type PipelineStatus = StoredPipelineStatus;

export const PipelineStatus = t.Union(
  [t.Literal("inactive"), t.Literal("active"), t.Literal("failed"), t.Literal("completed")],
  {
    description: "inactive, active, failed or completed",
    error: "the status must be inactive, active, failed or completed",
  },
);

export const Dependency = t.Object(
  {
    target: t.String({ maxLength: 1000, description: "The name of the errand that waits" }),
    dependsOn: t.String({ maxLength: 1000, description: "The name of the errand it waits for" }),
  },
  { ...lenient, examples: [{ target: "load", dependsOn: "extract" }] },
);
export type Dependency = Static<typeof Dependency>;

/**
 * An errand of a pipeline as sent. Name and type are checked by the pipeline validation, not
 * the schema, so that their absence gets v1's "pipeline validation failed" answer.
 */
export const PipelineErrandSpec = t.Object(
  {
    name: t.Optional(t.String({ maxLength: 1000 })),
    type: t.Optional(
      t.String({
        maxLength: 255,
        pattern: TYPE_PATTERN,
        error: "the type must be at most 255 characters, with no control characters",
      }),
    ),
    options: t.Optional(ErrandOptions),
    data: t.Optional(JsonObject),
  },
  lenient,
);
export type PipelineErrandSpec = Static<typeof PipelineErrandSpec>;

/**
 * A required field of the spec, missing or empty, answers v1's "pipeline validation failed"
 * with the detail the graph check gives; any other fault of the field keeps Elysia's answer.
 */
function v1Refusal(field: "name" | "errands", detail: string) {
  // `found` is the whole body, in production builds too.
  return ({ found }: { found?: unknown }) => {
    const value = (found as Record<string, unknown> | undefined)?.[field];
    const empty =
      value === undefined || value === "" || (Array.isArray(value) && value.length === 0);
    return empty ? new BadInput(VALIDATION_FAILED, detail) : undefined;
  };
}

export const PipelineSpec = t.Object(
  {
    name: t.String({
      minLength: 1,
      maxLength: 1000,
      error: v1Refusal("name", "the pipeline has no name"),
    }),
    deleteOnCompleted: t.Optional(t.Boolean()),
    errands: t.Array(PipelineErrandSpec, {
      minItems: 1,
      maxItems: 10_000,
      description:
        "Each needs a `name` (unique in the pipeline) and a `type`; checked with the graph, so their absence is a `pipeline validation failed` 400",
      error: v1Refusal("errands", "no errands specified in pipeline"),
    }),
    dependencies: t.Optional(t.Array(Dependency, { maxItems: 100_000 })),
  },
  {
    ...lenient,
    examples: [
      {
        name: "nightly report",
        errands: [
          { name: "extract", type: "extract", data: { day: "2026-01-01" } },
          { name: "load", type: "load" },
        ],
        dependencies: [{ target: "load", dependsOn: "extract" }],
      },
    ],
  },
);
export type PipelineSpec = Static<typeof PipelineSpec>;

export const Pipeline = t.Object(
  {
    id: t.String(),
    name: t.String(),
    deleteOnCompleted: t.Optional(t.Boolean()),
    status: PipelineStatus,
    startedMillis: Integer({ description: "ms since the Unix epoch" }),
    endedMillis: t.Optional(Integer({ description: "When it completed" })),
    errands: t.Optional(t.Array(Errand)),
    dependencies: t.Optional(t.Array(Dependency)),
  },
  {
    examples: [
      {
        id: "019a6a3e-7c1d-7b3e-9d2f-3c4b5a6d7e8f",
        name: "nightly report",
        status: "inactive",
        startedMillis: 1732600000000,
      },
    ],
  },
);
export type Pipeline = Static<typeof Pipeline>;

/** v1's 404 for an unknown pipeline; message and error added as in every other error. */
export const PipelineNotFound = t.Object({
  status: t.Literal("not_found"),
  message: t.String(),
  error: t.String(),
});

export const DryRun = t.Object(
  { message: t.Literal("pipeline validated successfully") },
  { description: "A dry run found the pipeline valid and created nothing" },
);
