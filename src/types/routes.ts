// GET /v1/types and PUT /v1/types/:type: the queue by type, and its controls.

import { Elysia, t } from "elysia";
import { ErrorBody, ok } from "../errands/model.ts";
import { TypeControls, TypeSummary } from "./model.ts";
import type { TypeService } from "./service.ts";

export function typeRoutes(types: TypeService) {
  return new Elysia({ tags: ["types"] })
    .get("/v1/types", async () => ({ status: "OK" as const, results: await types.list() }), {
      response: { 200: ok(t.Array(TypeSummary)) },
      detail: {
        summary: "Every type: errands by status, oldest waiting age, paused, concurrency",
      },
    })
    .put(
      "/v1/types/:type",
      async ({ params, body }) => ({
        status: "OK" as const,
        results: await types.set(params.type, body),
      }),
      {
        params: t.Object({ type: t.String({ minLength: 1, maxLength: 255 }) }),
        body: TypeControls,
        response: { 200: ok(TypeSummary), 400: ErrorBody },
        detail: {
          summary: "Pause a type or limit how many of its errands run at once",
          description:
            'Body `{"paused":bool,"concurrency":n|null}`; a field left out keeps its value. A paused type, or one with `concurrency` errands already active, answers claims with 404 `No jobs` (a long-poll keeps waiting). Stored: survives a restart.',
        },
      },
    );
}
