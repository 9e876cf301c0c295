// GET /health: the server answers, its database answers a query and takes a write (503 when
// either fails).

import { Elysia, t } from "elysia";
import { ErrorBody } from "../errands/model.ts";
import { DomainError, StorageUnavailable } from "../errors.ts";
import type { Driver } from "../store/driver.ts";
import { HEALTH_PATH } from "./auth.ts";

const Health = t.Object(
  { status: t.Literal("OK"), version: t.String() },
  { examples: [{ status: "OK", version: "2.0.0" }] },
);

/**
 * Whether the database answers a query and takes a write. The probe write is shared by the
 * checks that arrive while it runs, so a flood of them costs one write per commit.
 */
export class HealthCheck {
  private probing: Promise<void> | null = null;

  constructor(
    private readonly driver: Driver,
    private readonly now: () => number,
  ) {}

  async check(): Promise<void> {
    if (!this.driver.isOpen) throw new StorageUnavailable("the database is closed");
    try {
      await this.driver.reads.ping();
    } catch (error) {
      // The driver's own 503 already names what failed ("Failed to connect"): keep its detail.
      if (error instanceof DomainError) throw error;
      throw new StorageUnavailable(error instanceof Error ? error.message : String(error));
    }
    this.probing ??= this.driver
      .write((tx) => tx.probe(this.now()))
      .finally(() => {
        this.probing = null;
      });
    await this.probing;
  }
}

export function healthRoutes(health: HealthCheck, version: string) {
  return new Elysia({ tags: ["operations"] }).get(
    HEALTH_PATH,
    async () => {
      await health.check();
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
