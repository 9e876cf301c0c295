// GET /health: the server answers and its database does too (a real query, 503 when not).

import { Elysia, t } from "elysia";
import { ErrorBody } from "../errands/model.ts";
import type { StoreStats } from "../store/stats.ts";
import { HEALTH_PATH } from "./auth.ts";

const Health = t.Object(
  { status: t.Literal("OK"), version: t.String() },
  { examples: [{ status: "OK", version: "2.0.0" }] },
);

export function healthRoutes(stats: StoreStats, version: string) {
  return new Elysia({ tags: ["operations"] }).get(
    HEALTH_PATH,
    () => {
      stats.check();
      return { status: "OK" as const, version };
    },
    {
      response: { 200: Health, 503: ErrorBody },
      detail: {
        summary: "Check that the server and its database answer",
        description: "Runs a query on the database; 503 when it cannot answer. Needs no token.",
        security: [],
      },
    },
  );
}
