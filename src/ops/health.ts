// GET /health: the server answers, its database answers a query and takes a write (503 when
// either fails).

import { Elysia, t } from "elysia";
import { ErrorBody } from "../errands/model.ts";
import type { StoreStats } from "../store/stats.ts";
import { HEALTH_PATH } from "./auth.ts";

const Health = t.Object(
  { status: t.Literal("OK"), version: t.String() },
  { examples: [{ status: "OK", version: "2.0.0" }] },
);

export function healthRoutes(stats: StoreStats, version: string, now: () => number) {
  return new Elysia({ tags: ["operations"] }).get(
    HEALTH_PATH,
    async () => {
      stats.check();
      await stats.checkWrites(now());
      return { status: "OK" as const, version };
    },
    {
      response: { 200: Health, 503: ErrorBody },
      detail: {
        summary: "Check that the server and its database answer",
        description:
          "Runs a query on the database and commits a one-row write the way every request's write is committed (synced to disk with ERRANDS_SYNC=full); 503 when either fails. Needs no token.",
        security: [],
      },
    },
  );
}
