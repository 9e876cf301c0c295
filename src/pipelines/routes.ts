// The v1 pipeline routes: /v1/pipeline/… (create, one pipeline) and /v1/pipelines/ (the list).

import { Elysia, t } from "elysia";
import {
  ErrorBody,
  errorBody,
  IdempotencyHeader,
  KeyReused,
  OkOnly,
  ok,
  Paging,
} from "../errands/model.ts";
import { streamList } from "../paging.ts";
import { DryRun, Pipeline, PipelineNotFound, PipelineSpec, PipelineStatus } from "./model.ts";
import type { PipelineService } from "./service.ts";

const Id = t.Object({ id: t.String() });

/** The values of Go's strconv.ParseBool, which v1 used for ?dryRun. */
const TRUE = ["1", "t", "T", "TRUE", "true", "True"] as const;
const FALSE = ["0", "f", "F", "FALSE", "false", "False"] as const;
const DRY_RUN_VALUES = [...TRUE, ...FALSE];

const DryRunQuery = t.Union(
  DRY_RUN_VALUES.map((value) => t.Literal(value)),
  {
    description:
      "Go ParseBool: `1 t T TRUE true True` validate only; `0 f F FALSE false False` create",
    // `found` is the whole query, in production builds too.
    error: ({ found }: { found?: unknown }) =>
      `${JSON.stringify((found as { dryRun?: unknown } | undefined)?.dryRun)} is not one of ${DRY_RUN_VALUES.join(", ")}`,
  },
);
const isDryRun = (value: string | undefined) => (TRUE as readonly string[]).includes(value ?? "");

/** v1's answer for an unknown pipeline, {"status":"not_found"}, with the usual two fields. */
function notFound(id: string) {
  return {
    status: "not_found" as const,
    message: "Pipeline not found",
    error: `no pipeline has id ${JSON.stringify(id)}`,
  };
}

export function pipelineRoutes(pipelines: PipelineService) {
  const onePage = async (status: PipelineStatus | undefined, after: string, limit: number) => {
    const page = await pipelines.page(status, after, limit);
    return { status: "OK" as const, results: page.pipelines, next: page.next };
  };

  return new Elysia({ tags: ["pipelines"] })
    .post(
      "/v1/pipeline",
      async ({ body, query, headers }) => {
        if (isDryRun(query.dryRun)) {
          pipelines.validate(body);
          return { message: "pipeline validated successfully" as const };
        }
        const key = headers["idempotency-key"];
        return { status: "OK" as const, results: await pipelines.create(body, key) };
      },
      {
        body: PipelineSpec,
        headers: IdempotencyHeader,
        query: t.Object({ dryRun: t.Optional(DryRunQuery) }),
        response: {
          200: t.Union([ok(Pipeline), DryRun]),
          400: errorBody(
            "`pipeline validation failed`: no name, no errands, an errand without name or type, duplicate names, a self-dependency, a dependency on an unknown name, or a cycle; `Invalid request`: the body breaks its schema, an errand has both `runAt` and `delay`, `dryRun` is not a ParseBool value, or the Idempotency-Key is empty or longer than 255 characters",
          ),
          409: KeyReused,
        },
        detail: {
          summary: "Create a pipeline",
          description:
            "Errands with no dependencies are queued (`inactive`, event `created`); the others are `blocked` until every errand they depend on has completed (event `unblocked`). One with a `runAt` or `delay` still ahead is `scheduled` until then instead (not both: 400). 400 `pipeline validation failed` with no name, no errands, an errand without name or type, duplicate names, a self-dependency, a dependency on an unknown name, or a cycle. With `?dryRun=true` (Go ParseBool values) only validates. With an `Idempotency-Key` header used in the last 24 h, answers the first result again (409 when the key came with another body).",
        },
      },
    )
    .get(
      "/v1/pipeline/:id",
      async ({ params, status }) => {
        const pipeline = await pipelines.get(params.id);
        if (pipeline === null) return status(404, notFound(params.id));
        return { status: "OK" as const, results: pipeline };
      },
      {
        params: Id,
        response: { 200: ok(Pipeline), 404: PipelineNotFound },
        detail: { summary: "Get a pipeline with its errands and dependencies" },
      },
    )
    .delete(
      "/v1/pipeline/:id",
      async ({ params, status }) => {
        if (!(await pipelines.remove(params.id))) return status(404, notFound(params.id));
        return { status: "OK" as const };
      },
      {
        params: Id,
        response: { 200: OkOnly, 404: PipelineNotFound },
        detail: {
          summary: "Delete a pipeline with its errands",
          description: "Emits `deleted` for each of its errands.",
        },
      },
    )
    .get(
      "/v1/pipelines",
      ({ query }) => {
        if (query.limit === undefined) {
          return streamList(pipelines.pages(query.status, query.after ?? ""));
        }
        return onePage(query.status, query.after ?? "", query.limit);
      },
      {
        query: t.Object({ status: t.Optional(PipelineStatus), ...Paging.properties }),
        response: {
          200: t.Object({
            status: t.Literal("OK"),
            results: t.Array(Pipeline),
            next: t.Optional(t.Union([t.String(), t.Null()])),
          }),
          400: ErrorBody,
        },
        detail: {
          summary: "List pipelines",
          description:
            "Without their errands and dependencies, in creation order, streamed; `?status=` keeps one status. `[]` when there are none. With `limit`, one page; pass the answer's `next` as `after` for the following page.",
        },
      },
    );
}
