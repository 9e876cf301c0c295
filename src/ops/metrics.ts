// Prometheus metrics: v1's completion counter, queue depth, time waiting and running, HTTP
// requests and latency by route, and event-stream clients. One registry per app.

import { Elysia } from "elysia";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ErrandEvent } from "../events/bus.ts";
import type { DepthRow } from "../store/stats.ts";

/** The fields of an event's errand the metrics read. */
interface ErrandTimes {
  type: string;
  status: string;
  created: number;
  attempts: number;
  started?: number;
  completed?: number;
  failed?: number;
}

/** Seconds, from a blink to a day: errands wait and run for very different lengths of time. */
const ERRAND_BUCKETS = [
  0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400,
];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60];

export class Metrics {
  readonly registry = new Registry();

  /** v1's counter, name, help and labels unchanged: dashboards and alerts depend on them. */
  readonly completed = new Counter({
    name: "poly_errands_completed_total",
    help: "A counter of all the completed errands processed by this server",
    labelNames: ["errand_type", "status"] as const,
    registers: [this.registry],
  });

  readonly waiting = new Histogram({
    name: "errands_wait_seconds",
    help: "Time from an errand's creation to its first claim",
    labelNames: ["errand_type"] as const,
    buckets: ERRAND_BUCKETS,
    registers: [this.registry],
  });

  readonly running = new Histogram({
    name: "errands_run_seconds",
    help: "Time from a claim to the completion or failure of that attempt",
    labelNames: ["errand_type", "status"] as const,
    buckets: ERRAND_BUCKETS,
    registers: [this.registry],
  });

  readonly httpRequests = new Counter({
    name: "errands_http_requests_total",
    help: "HTTP requests answered, by method, route template and status code",
    labelNames: ["method", "route", "code"] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: "errands_http_request_duration_seconds",
    help: "Time to answer an HTTP request (to its first byte for streams)",
    labelNames: ["method", "route", "code"] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });

  /** Open event streams; the stream module reports each open (+1) and close (-1). */
  readonly sseClients = new Gauge({
    name: "errands_sse_clients",
    help: "Server-Sent Events clients connected",
    registers: [this.registry],
  });

  constructor(depth: () => DepthRow[], longPolls: () => number) {
    // Counted at scrape time from the database, so it is right after a restart too.
    new Gauge({
      name: "errands_queue_depth",
      help: "Errands stored, by type and status",
      labelNames: ["errand_type", "status"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const row of depth())
          this.set({ errand_type: row.type, status: row.status }, row.count);
      },
    });
    new Gauge({
      name: "errands_long_poll_waiters",
      help: "Claims waiting for an errand (?wait=)",
      registers: [this.registry],
      collect() {
        this.set(longPolls());
      },
    });
    const started = Date.now() / 1000;
    new Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since the Unix epoch in seconds",
      registers: [this.registry],
      collect() {
        this.set(started);
      },
    });
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes",
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
  }

  /** Reads an errand event: claims give the wait, completions and failures the run time. */
  observe(event: ErrandEvent): void {
    const errand = event.errand as ErrandTimes;
    const type = errand.type;
    if (event.event === "processing" && errand.attempts === 1 && errand.started) {
      this.waiting.observe({ errand_type: type }, seconds(errand.started - errand.created));
    } else if (event.event === "completed") {
      this.completed.inc({ errand_type: type, status: "completed" });
      if (errand.started && errand.completed) {
        const run = seconds(errand.completed - errand.started);
        this.running.observe({ errand_type: type, status: "completed" }, run);
      }
    } else if (event.event === "failed") {
      // A failure that re-queues the errand is not the end of it: v1 counted only the last.
      if (errand.status === "failed") this.completed.inc({ errand_type: type, status: "failed" });
      if (errand.started && errand.failed) {
        const run = seconds(errand.failed - errand.started);
        this.running.observe({ errand_type: type, status: "failed" }, run);
      }
    }
  }

  observeRequest(method: string, route: string, code: number, elapsedSeconds: number): void {
    const labels = { method, route, code: String(code) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, elapsedSeconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}

const EXAMPLE = `# HELP poly_errands_completed_total A counter of all the completed errands processed by this server
# TYPE poly_errands_completed_total counter
poly_errands_completed_total{errand_type="extract",status="completed"} 42
`;

export function metricsRoutes(metrics: Metrics) {
  return new Elysia({ tags: ["operations"] }).get(
    "/metrics",
    async () =>
      new Response(await metrics.text(), { headers: { "content-type": metrics.contentType } }),
    {
      detail: {
        summary: "Prometheus metrics",
        description:
          "Text exposition format. Needs the token when ERRANDS_TOKEN is set, unless ERRANDS_METRICS_PUBLIC=true.",
        responses: {
          200: {
            description: "Prometheus text format",
            content: { "text/plain": { schema: { type: "string" }, example: EXAMPLE } },
          },
          503: { description: "The database cannot answer" },
        },
      },
    },
  );
}
