// Prometheus metrics: v1's completion counter, queue depth, time waiting and running, rate
// limits and the claims they held back, HTTP requests and latency by route, and event-stream
// clients. One registry per app; the series
// by errand type are capped in number and dropped once their type is gone.

import { Elysia } from "elysia";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { LocalEvent } from "../events/bus.ts";
import type { CountRow, TypeControlsRecord } from "../store/records.ts";

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

/** The errand_type of every type past the cap, and of a type named so. */
export const OTHER_TYPES = "_other";

/** Methods labelled as themselves on the request metrics; any other counts as `other`. */
const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);

/**
 * How long a type with no errand stored keeps its series after it was last seen. Longer than
 * any sane scrape interval, so that a type whose errands are deleted as they complete
 * (deleteOnCompleted) keeps its counters, and each scraper sees a type's last values.
 */
export const IDLE_TYPE_MS = 10 * 60_000;

export interface MetricsDeps {
  /** Errands stored, by type and status; read at each scrape. */
  depth: () => Promise<CountRow[]>;
  /** The per-type controls, for the rate limits; read at each scrape. */
  controls: () => Promise<TypeControlsRecord[]>;
  /** Claims waiting (long polls). */
  longPolls: () => number;
  /** The queue's clock, for how long a type has been idle. */
  now: () => number;
  /** Types with series of their own; the others share errand_type="_other". */
  maxTypes: number;
}

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

  /** Counted as this instance's claims find their type's rate limit reached. */
  private readonly rateLimited = new Counter({
    name: "errands_rate_limited_total",
    help: "Claims that took nothing because their type's rate limit was reached (each try of a long poll counts)",
    labelNames: ["errand_type"] as const,
    registers: [this.registry],
  });

  /** Set at each scrape from the stored controls. */
  private readonly rateLimitMax = new Gauge({
    name: "errands_rate_limit_max",
    help: "Most claims of the type that may start in any window of its rate limit",
    labelNames: ["errand_type"] as const,
    registers: [this.registry],
  });

  private readonly rateLimitWindow = new Gauge({
    name: "errands_rate_limit_window_seconds",
    help: "The window of the type's rate limit",
    labelNames: ["errand_type"] as const,
    registers: [this.registry],
  });

  /** Open event streams; the stream module reports each open (+1) and close (-1). */
  readonly sseClients = new Gauge({
    name: "errands_sse_clients",
    help: "Server-Sent Events clients connected",
    registers: [this.registry],
  });

  /** Counted at each scrape from the counts the store keeps, so it is right after a restart. */
  private readonly queueDepth = new Gauge({
    name: "errands_queue_depth",
    help: "Errands stored, by type and status",
    labelNames: ["errand_type", "status"] as const,
    registers: [this.registry],
  });

  private readonly types: TypeLabels;
  private readonly depth: () => Promise<CountRow[]>;
  private readonly controls: () => Promise<TypeControlsRecord[]>;

  constructor({ depth, controls, longPolls, now, maxTypes }: MetricsDeps) {
    this.depth = depth;
    this.controls = controls;
    this.types = new TypeLabels(maxTypes, now);
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
  observe(event: LocalEvent): void {
    const errand = event.errand as ErrandTimes;
    // Every event of a type counts as a sign of life, deletions too.
    const type = this.types.of(errand.type);
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

  /** A claim of the type took nothing: its rate limit was reached. */
  observeRateLimited(type: string): void {
    this.rateLimited.inc({ errand_type: this.types.of(type) });
  }

  /** The series of each (method, route, status) seen: found by one map lookup per request
   *  rather than by hashing a labels object twice (prom-client's way). */
  private readonly requestSeries = new Map<
    string,
    { count: { inc(): void }; duration: { observe(seconds: number): void } }
  >();

  observeRequest(method: string, route: string, code: number, elapsedSeconds: number): void {
    // Any token may come as a method: the label takes the known ones, so series stay bounded.
    const known = HTTP_METHODS.has(method) ? method : "other";
    const key = `${known} ${code} ${route}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      const labels = { method: known, route, code: String(code) };
      series = {
        count: this.httpRequests.labels(labels),
        duration: this.httpDuration.labels(labels),
      };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.duration.observe(elapsedSeconds);
  }

  /** The scrape: per-type series brought up to date with the store first. */
  async text(): Promise<string> {
    await this.collectTypes();
    return this.registry.metrics();
  }

  /**
   * Drops the series of types idle with no errand stored nor rate limit, then sets the queue
   * depth and the rate limits. Dropping first frees their places under the cap for the types
   * stored now.
   */
  private async collectTypes(): Promise<void> {
    const rows = await this.depth();
    const limited = (await this.controls()).filter((control) => control.rateLimit !== null);
    const stored = new Set([...rows, ...limited].map((row) => typeLabel(row.type)));
    for (const label of this.types.expire(stored)) this.forget(label);
    this.queueDepth.reset();
    // inc, not set: types past the cap, or whose labels coincide, add up in one series.
    for (const row of rows) {
      this.queueDepth.inc({ errand_type: this.types.of(row.type), status: row.status }, row.count);
    }
    this.rateLimitMax.reset();
    this.rateLimitWindow.reset();
    for (const { type, rateLimit } of limited) {
      const label = this.types.of(type);
      // Limits of several types summed under one label would mean nothing.
      if (label === OTHER_TYPES || !rateLimit) continue;
      this.rateLimitMax.set({ errand_type: label }, rateLimit.max);
      this.rateLimitWindow.set({ errand_type: label }, rateLimit.perMs / 1000);
    }
    if (this.types.otherIdle()) this.forget(OTHER_TYPES);
  }

  private forget(label: string): void {
    this.waiting.remove({ errand_type: label });
    this.rateLimited.remove({ errand_type: label });
    for (const status of ["completed", "failed"]) {
      this.completed.remove({ errand_type: label, status });
      this.running.remove({ errand_type: label, status });
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}

/**
 * The errand_type label values in use: at most `max` of them, each with when it was last seen
 * (an event of its errands, or errands of it stored at a scrape).
 */
class TypeLabels {
  private readonly seen = new Map<string, number>();
  private otherSeen = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  /** The label of a type's series: its own while there is room, else OTHER_TYPES. */
  of(type: string): string {
    const label = typeLabel(type);
    const now = this.now();
    if (label !== OTHER_TYPES && (this.seen.has(label) || this.seen.size < this.max)) {
      this.seen.set(label, now);
      return label;
    }
    this.otherSeen = now;
    return OTHER_TYPES;
  }

  /** Forgets the labels idle for IDLE_TYPE_MS with no errand stored, and answers them. */
  expire(stored: Set<string>): string[] {
    const now = this.now();
    const gone: string[] = [];
    for (const [label, seen] of this.seen) {
      if (stored.has(label) || now - seen < IDLE_TYPE_MS) continue;
      this.seen.delete(label);
      gone.push(label);
    }
    return gone;
  }

  /** No type counted under OTHER_TYPES has been seen for IDLE_TYPE_MS. */
  otherIdle(): boolean {
    return this.now() - this.otherSeen >= IDLE_TYPE_MS;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/**
 * A type as a label value: control characters written as `\xNN`. prom-client escapes only
 * backslash, quote and newline; a raw NUL or carriage return would reach the scrape as is,
 * where tools that read C strings or lines go wrong.
 */
function typeLabel(type: string): string {
  return type.replace(
    CONTROL_CHARACTERS,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
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
          'Text exposition format. Needs the token when ERRANDS_TOKEN is set, unless ERRANDS_METRICS_PUBLIC=true. At most ERRANDS_METRICS_MAX_TYPES types have series of their own, the others count under `errand_type="_other"`; a type\'s series are dropped once none of its errands is stored and none has had an event for 10 minutes.',
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
