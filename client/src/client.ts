// ErrandsClient: one method per route of the server, typed by the server's own schemas; errors
// thrown as typed exceptions; calls whose repeat is harmless retried with backoff.

import { backoffDelay, sleep } from "./backoff.ts";
import { ErrandsError, errorFor, NetworkError, NotFoundError } from "./errors.ts";
import { type EventsOptions, streamEvents } from "./events.ts";
import type { paths } from "./openapi.ts";
import type {
  AckItem,
  AckResult,
  Answer,
  BulkAnswer,
  BulkChange,
  BulkSelection,
  Errand,
  ErrandPage,
  ErrandSpec,
  ErrorEnvelope,
  Health,
  HistoryMinute,
  HistoryQuery,
  JsonObject,
  ListFilter,
  Pipeline,
  PipelineFilter,
  PipelinePage,
  PipelineSpec,
  PipelineSummary,
  Schedule,
  ScheduledPage,
  ScheduledQuery,
  SchedulePage,
  ScheduleSpec,
  Severity,
  StreamEvent,
  TypeControls,
  TypeSummary,
} from "./types.ts";
import { Worker, type WorkerOptions } from "./worker.ts";

/** What the client needs of fetch. */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** The server, e.g. `http://localhost:5555` (a path prefix is kept). */
  url: string;
  /** One of the server's ERRANDS_TOKEN, sent as `Authorization: Bearer`. */
  token?: string;
  /** Retries of the calls that are safe to repeat (see README): 4 by default, 0 for none. */
  retries?: number;
  /** Backoff before retry n: a random time up to min(maxDelayMs, baseDelayMs·2^n). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How long a call waits for the answer's headers (a long poll adds its wait): 30 s. */
  timeoutMs?: number;
  /** The fetch to use: the global one by default. */
  fetch?: Fetch;
}

export interface Paging {
  limit: number;
  after?: string;
}

/** The attempt a worker holds (the claim's `attempts`): a call for another is refused with 409. */
export interface AttemptOption {
  attempt?: number;
}

export interface CreateOptions {
  /** Sent as `Idempotency-Key`; a random UUID unless given, so a retried create never duplicates. */
  idempotencyKey?: string;
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

/** One call, as `send` makes it. */
export interface Call {
  method: Method;
  /** A path template of the server's document, filled with `params`. */
  path: keyof paths;
  params?: Record<string, string>;
  /** Its fields, those not undefined, as the query string. */
  query?: object;
  body?: unknown;
  headers?: Record<string, string>;
  /** Whether a repeat is harmless, so that a lost answer or a 5xx is tried again. */
  retry: boolean;
  signal?: AbortSignal;
  /** Added to the client's timeout (a long poll's wait). */
  extraTimeoutMs?: number;
  /** Keep `signal` attached to the body once the headers came (a stream), not only until then. */
  streaming?: boolean;
}

/** Answers worth another try of a call that is safe to repeat. */
const RETRIED_STATUSES = new Set([500, 502, 503, 504]);

export class ErrandsClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetch: Fetch;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.token = options.token;
    this.retries = options.retries ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetch = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  }

  // ---- errands ----

  /** Creates an errand. Retried: it carries an Idempotency-Key (random unless given). */
  async create(spec: ErrandSpec, options: CreateOptions = {}): Promise<Errand> {
    const answer = await this.json<Answer<"postV1Errands">>({
      method: "POST",
      path: "/v1/errands",
      body: spec,
      headers: { "idempotency-key": options.idempotencyKey ?? crypto.randomUUID() },
      retry: true,
    });
    return answer.results;
  }

  /** Creates up to 1000 errands, all or none. Retried, with an Idempotency-Key as `create`. */
  async createMany(specs: ErrandSpec[], options: CreateOptions = {}): Promise<Errand[]> {
    const answer = await this.json<Answer<"postV1ErrandsBatch">>({
      method: "POST",
      path: "/v1/errands/batch",
      body: { errands: specs },
      headers: { "idempotency-key": options.idempotencyKey ?? crypto.randomUUID() },
      retry: true,
    });
    return answer.results;
  }

  async get(id: string): Promise<Errand> {
    const answer = await this.json<Answer<"getV1ErrandById">>({
      method: "GET",
      path: "/v1/errand/{id}",
      params: { id },
      retry: true,
    });
    return answer.results;
  }

  /** Every errand matching the filter (all when none), in creation order. */
  async list(filter: ListFilter = {}): Promise<Errand[]> {
    const answer = await this.json<ErrandPage>({
      method: "GET",
      path: "/v1/errands",
      query: filter,
      retry: true,
    });
    return answer.results;
  }

  /** One page of `list`; pass its `next` as `after` for the following one (null on the last). */
  async listPage(filter: ListFilter & Paging): Promise<{ results: Errand[]; next: string | null }> {
    const answer = await this.json<ErrandPage>({
      method: "GET",
      path: "/v1/errands",
      query: filter,
      retry: true,
    });
    return { results: answer.results, next: answer.next ?? null };
  }

  /** v1's `list/:key/:val`: every errand of a status or of a type. */
  async listBy(key: "status" | "type", value: string): Promise<Errand[]> {
    const answer = await this.json<Answer<"getV1ErrandsListByKeyByVal">>({
      method: "GET",
      path: "/v1/errands/list/{key}/{val}",
      params: { key, val: value },
      retry: true,
    });
    return answer.results;
  }

  /** Scheduled errands, soonest first, a page at a time (100 unless `limit` says). */
  async scheduled(query: Partial<ScheduledQuery> = {}): Promise<ScheduledPage> {
    return this.json<ScheduledPage>({
      method: "GET",
      path: "/v1/errands/scheduled",
      query,
      retry: true,
    });
  }

  /**
   * Claims the next errand of a type, or answers null when none waits (v1's `404 No jobs`).
   * With `wait` (seconds, up to 60) holds until one comes. Never retried: a repeat would claim
   * another; a claim whose answer is lost is put back in the queue by the server.
   */
  async process(
    type: string,
    options: { wait?: number; signal?: AbortSignal } = {},
  ): Promise<Errand | null> {
    try {
      const answer = await this.json<Answer<"postV1ErrandsProcessByType">>({
        method: "POST",
        path: "/v1/errands/process/{type}",
        params: { type },
        query: { wait: options.wait },
        retry: false,
        signal: options.signal,
        extraTimeoutMs: (options.wait ?? 0) * 1000,
      });
      return answer.results;
    } catch (error) {
      if (error instanceof NotFoundError && error.envelope.message === "No jobs") return null;
      throw error;
    }
  }

  /**
   * Claims up to `count` (1–100) errands of a type at once; `[]` when none could be. With
   * `wait` (seconds, up to 60) holds until any can be. Never retried, as `process`.
   */
  async claim(
    type: string,
    options: { count?: number; wait?: number; signal?: AbortSignal } = {},
  ): Promise<Errand[]> {
    const answer = await this.json<Answer<"postV1ErrandsClaimByType">>({
      method: "POST",
      path: "/v1/errands/claim/{type}",
      params: { type },
      query: { count: options.count, wait: options.wait },
      retry: false,
      signal: options.signal,
      extraTimeoutMs: (options.wait ?? 0) * 1000,
    });
    return answer.results;
  }

  /**
   * Completes and fails up to 1000 errands at once; each item's outcome in order. Retried when
   * every item names its attempt: a repeat of a report already applied is then refused (409)
   * for that item and changes nothing.
   */
  async ack(items: AckItem[]): Promise<AckResult[]> {
    const answer = await this.json<Answer<"postV1ErrandsAck">>({
      method: "POST",
      path: "/v1/errands/ack",
      body: { items },
      retry: items.every((item) => item.attempt !== undefined),
    });
    return answer.results;
  }

  /** Sets the progress (0–100) of an active errand. Retried: setting it twice is setting it. */
  async progress(id: string, progress: number, options: AttemptOption = {}): Promise<Errand> {
    const answer = await this.json<Answer<"putV1ErrandById">>({
      method: "PUT",
      path: "/v1/errand/{id}",
      params: { id },
      body: { progress, attempt: options.attempt },
      retry: true,
    });
    return answer.results;
  }

  /** Appends a log entry to an active errand. Not retried: a repeat would append it twice. */
  async log(
    id: string,
    severity: Severity,
    message: string,
    options: AttemptOption = {},
  ): Promise<Errand> {
    const answer = await this.json<Answer<"postV1ErrandByIdLog">>({
      method: "POST",
      path: "/v1/errand/{id}/log",
      params: { id },
      body: { severity, message, attempt: options.attempt },
      retry: false,
    });
    return answer.results;
  }

  /** Tells the server the worker of an active errand is alive. Retried. */
  async heartbeat(id: string, options: AttemptOption = {}): Promise<Errand> {
    const answer = await this.json<Answer<"postV1ErrandByIdHeartbeat">>({
      method: "POST",
      path: "/v1/errand/{id}/heartbeat",
      params: { id },
      body: { attempt: options.attempt },
      retry: true,
    });
    return answer.results;
  }

  /** Completes an errand with its results. Retried only with an `attempt` (see `ack`). */
  async complete(id: string, results?: JsonObject, options: AttemptOption = {}): Promise<Errand> {
    const answer = await this.json<Answer<"putV1ErrandByIdCompleted">>({
      method: "PUT",
      path: "/v1/errand/{id}/completed",
      params: { id },
      body: { results, attempt: options.attempt },
      retry: options.attempt !== undefined,
    });
    return answer.results;
  }

  /**
   * Completes an errand and claims the next of its type in the same transaction (`?next=true`);
   * `next` is null when none waits. Never retried: a repeat could claim another.
   */
  async completeAndClaim(
    id: string,
    results?: JsonObject,
    options: AttemptOption = {},
  ): Promise<{ completed: Errand; next: Errand | null }> {
    const answer = await this.json<Answer<"putV1ErrandByIdCompleted">>({
      method: "PUT",
      path: "/v1/errand/{id}/completed",
      params: { id },
      query: { next: "true" },
      body: { results, attempt: options.attempt },
      retry: false,
    });
    return { completed: answer.results, next: answer.next ?? null };
  }

  /**
   * Fails an errand: re-queued while it has retries left. Retried only with an `attempt`
   * (see `ack`).
   */
  async fail(id: string, reason: string, options: AttemptOption = {}): Promise<Errand> {
    const answer = await this.json<Answer<"putV1ErrandByIdFailed">>({
      method: "PUT",
      path: "/v1/errand/{id}/failed",
      params: { id },
      body: { reason, attempt: options.attempt },
      retry: options.attempt !== undefined,
    });
    return answer.results;
  }

  /** Queues an errand again. Not retried (a repeat is refused: it is already queued). */
  async retry(id: string): Promise<Errand> {
    const answer = await this.json<Answer<"postV1ErrandByIdRetry">>({
      method: "POST",
      path: "/v1/errand/{id}/retry",
      params: { id },
      retry: false,
    });
    return answer.results;
  }

  /** Deletes an errand (also when unknown, as v1). Retried: deleting twice is deleting. */
  async delete(id: string): Promise<void> {
    await this.json<Answer<"deleteV1ErrandById">>({
      method: "DELETE",
      path: "/v1/errand/{id}",
      params: { id },
      retry: true,
    });
  }

  /** Sets the status of, or deletes, every errand of a status or type; answers how many. */
  async updateWhere(key: "status" | "type", value: string, change: BulkChange): Promise<number> {
    const answer = await this.json<Answer<"postV1ErrandsUpdateByKeyByVal">>({
      method: "POST",
      path: "/v1/errands/update/{key}/{val}",
      params: { key, val: value },
      body: change,
      retry: false,
    });
    return answer.count;
  }

  /** Retries errands by id, or a batch of those a filter matches (send `next` as `after`). */
  async retryMany(selection: BulkSelection): Promise<BulkAnswer> {
    return this.json<BulkAnswer>({
      method: "POST",
      path: "/v1/errands/retry",
      body: selection,
      retry: false,
    });
  }

  /** Deletes errands by id, or a batch of those a filter matches (send `next` as `after`). */
  async deleteMany(selection: BulkSelection): Promise<BulkAnswer> {
    return this.json<BulkAnswer>({
      method: "POST",
      path: "/v1/errands/delete",
      body: selection,
      retry: false,
    });
  }

  /** Deletes errands finished more than `duration` (Go syntax: `90s`, `1h30m`) ago; answers them. */
  async clear(duration: string): Promise<Errand[]> {
    const answer = await this.json<Answer<"postV1ErrandsClearByDuration">>({
      method: "POST",
      path: "/v1/errands/clear/{duration}",
      params: { duration },
      retry: false,
    });
    return answer.results;
  }

  // ---- pipelines ----

  /** Creates a pipeline. Retried, with an Idempotency-Key as `create`. */
  async createPipeline(spec: PipelineSpec, options: CreateOptions = {}): Promise<Pipeline> {
    const answer = await this.json<Answer<"postV1Pipeline">>({
      method: "POST",
      path: "/v1/pipeline",
      body: spec,
      headers: { "idempotency-key": options.idempotencyKey ?? crypto.randomUUID() },
      retry: true,
    });
    if (!("results" in answer)) throw new Error("the server validated instead of creating");
    return answer.results;
  }

  /** Validates a pipeline without creating it (`?dryRun=true`); throws BadRequestError if bad. */
  async validatePipeline(spec: PipelineSpec): Promise<void> {
    await this.json<Answer<"postV1Pipeline">>({
      method: "POST",
      path: "/v1/pipeline",
      query: { dryRun: "true" },
      body: spec,
      retry: true,
    });
  }

  async pipeline(id: string): Promise<Pipeline> {
    const answer = await this.json<Answer<"getV1PipelineById">>({
      method: "GET",
      path: "/v1/pipeline/{id}",
      params: { id },
      retry: true,
    });
    return answer.results;
  }

  /** Deletes a pipeline with its errands. Not retried: a repeat is a 404. */
  async deletePipeline(id: string): Promise<void> {
    await this.json<Answer<"deleteV1PipelineById">>({
      method: "DELETE",
      path: "/v1/pipeline/{id}",
      params: { id },
      retry: false,
    });
  }

  /** Every pipeline (of a status), without errands and dependencies, in creation order. */
  async pipelines(filter: PipelineFilter = {}): Promise<PipelineSummary[]> {
    const answer = await this.json<PipelinePage>({
      method: "GET",
      path: "/v1/pipelines",
      query: filter,
      retry: true,
    });
    return answer.results;
  }

  /** One page of `pipelines`; pass its `next` as `after` (null on the last). */
  async pipelinesPage(
    filter: PipelineFilter & Paging,
  ): Promise<{ results: PipelineSummary[]; next: string | null }> {
    const answer = await this.json<PipelinePage>({
      method: "GET",
      path: "/v1/pipelines",
      query: filter,
      retry: true,
    });
    return { results: answer.results, next: answer.next ?? null };
  }

  // ---- types ----

  /** Every type: errands by status, oldest waiting age, paused, concurrency. */
  async types(): Promise<TypeSummary[]> {
    const answer = await this.json<Answer<"getV1Types">>({
      method: "GET",
      path: "/v1/types",
      retry: true,
    });
    return answer.results;
  }

  /** Pauses a type or limits its concurrency (a field left out keeps its value). Retried. */
  async setType(type: string, controls: TypeControls): Promise<TypeSummary> {
    const answer = await this.json<Answer<"putV1TypesByType">>({
      method: "PUT",
      path: "/v1/types/{type}",
      params: { type },
      body: controls,
      retry: true,
    });
    return answer.results;
  }

  /** Completed, failed and waiting errands per minute, oldest first. */
  async typeHistory(query: Partial<HistoryQuery> = {}): Promise<HistoryMinute[]> {
    const answer = await this.json<Answer<"getV1TypesHistory">>({
      method: "GET",
      path: "/v1/types/history",
      query,
      retry: true,
    });
    return answer.results;
  }

  // ---- schedules ----

  /**
   * Creates or replaces the schedule of that name; answers it and whether it was new.
   * Retried: a repeat puts the same schedule again.
   */
  async putSchedule(
    name: string,
    spec: ScheduleSpec,
  ): Promise<{ schedule: Schedule; created: boolean }> {
    const answer = await this.json<Answer<"putV1SchedulesByName">>({
      method: "PUT",
      path: "/v1/schedules/{name}",
      params: { name },
      body: spec,
      retry: true,
    });
    return { schedule: answer.results, created: answer.created };
  }

  async schedule(name: string): Promise<Schedule> {
    const answer = await this.json<Answer<"getV1SchedulesByName">>({
      method: "GET",
      path: "/v1/schedules/{name}",
      params: { name },
      retry: true,
    });
    return answer.results;
  }

  /** Every schedule, in name order. */
  async schedules(): Promise<Schedule[]> {
    const answer = await this.json<SchedulePage>({
      method: "GET",
      path: "/v1/schedules",
      retry: true,
    });
    return answer.results;
  }

  /** One page of `schedules`; pass its `next` as `after` (null on the last). */
  async schedulesPage(page: Paging): Promise<{ results: Schedule[]; next: string | null }> {
    const answer = await this.json<SchedulePage>({
      method: "GET",
      path: "/v1/schedules",
      query: page,
      retry: true,
    });
    return { results: answer.results, next: answer.next ?? null };
  }

  /** Deletes a schedule (its errands stay). Not retried: a repeat is a 404. */
  async deleteSchedule(name: string): Promise<void> {
    await this.json<Answer<"deleteV1SchedulesByName">>({
      method: "DELETE",
      path: "/v1/schedules/{name}",
      params: { name },
      retry: false,
    });
  }

  // ---- operations ----

  /** `{"status":"OK","version"}`; UnavailableError when the database cannot answer. */
  async health(): Promise<Health> {
    return this.json<Health>({ method: "GET", path: "/health", retry: false });
  }

  /** The Prometheus text of `/metrics`. */
  async metrics(): Promise<string> {
    return this.send({ method: "GET", path: "/metrics", retry: true }, (r) => r.text());
  }

  // ---- events and workers ----

  /**
   * The event stream as an async iterator: `events` filters by name, `lastEventId` resumes
   * after an id. A dropped stream is reopened after the last id received, so nothing is missed.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    return streamEvents(this, options);
  }

  /** Starts a worker for a type: see Worker. */
  worker(options: WorkerOptions): Worker {
    return new Worker(this, options);
  }

  // ---- the transport ----

  /** Makes a call and reads its JSON answer. */
  json<T>(call: Call): Promise<T> {
    return this.send(call, (response) => response.json() as Promise<T>);
  }

  /**
   * Makes a call and reads its answer with `read`. A call that may be repeated is tried again,
   * after a backoff, when no answer came (or it broke off) or the server answered 5xx; every
   * error answer is thrown as the ErrandsError of its status.
   */
  async send<T>(call: Call, read: (response: Response) => Promise<T>): Promise<T> {
    const label = `${call.method} ${call.path}`;
    for (let attempt = 0; ; attempt++) {
      const last = !call.retry || attempt >= this.retries;
      try {
        const response = await this.open(call);
        if (response.ok) return await read(response);
        const error = errorFor(response.status, await envelopeOf(response), label);
        if (last || !RETRIED_STATUSES.has(response.status)) throw error;
      } catch (error) {
        if (error instanceof ErrandsError) throw error;
        // The caller's own cancellation is final.
        if (call.signal?.aborted) throw call.signal.reason;
        if (last) throw new NetworkError(label, error);
      }
      await sleep(this.backoff(attempt), call.signal);
      if (call.signal?.aborted) throw call.signal.reason;
    }
  }

  /** A random delay before retry `attempt`: up to baseDelayMs·2^attempt, at most maxDelayMs. */
  backoff(attempt: number): number {
    return backoffDelay(attempt, this.baseDelayMs, this.maxDelayMs);
  }

  /**
   * Sends a call once and answers the response once its headers came. The caller's signal and
   * the timeout cancel the request until then; a stream keeps the signal for its body too.
   */
  async open(call: Call): Promise<Response> {
    const controller = new AbortController();
    const timeout = new Error(`no answer within ${this.timeoutMs + (call.extraTimeoutMs ?? 0)} ms`);
    const timer = setTimeout(
      () => controller.abort(timeout),
      this.timeoutMs + (call.extraTimeoutMs ?? 0),
    );
    const cancel = () => controller.abort(call.signal?.reason);
    if (call.signal?.aborted) cancel();
    call.signal?.addEventListener("abort", cancel);
    const headers: Record<string, string> = { accept: "application/json", ...call.headers };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (call.body !== undefined) headers["content-type"] = "application/json";
    try {
      return await this.fetch(this.urlOf(call), {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
      if (!call.streaming) call.signal?.removeEventListener("abort", cancel);
    }
  }

  private urlOf(call: Call): string {
    const path = call.path.replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(call.params?.[name] ?? ""),
    );
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(call.query ?? {}) as [string, unknown][]) {
      if (value !== undefined) query.set(key, String(value));
    }
    const search = query.toString();
    return `${this.url}${path}${search === "" ? "" : `?${search}`}`;
  }
}

/** The error envelope of an answer; one made from its status when the body is not one. */
async function envelopeOf(response: Response): Promise<ErrorEnvelope> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as Partial<ErrorEnvelope>;
    if (typeof body.message === "string") {
      return { message: body.message, error: typeof body.error === "string" ? body.error : "" };
    }
  } catch {
    // Not JSON (a proxy's page, say): described below.
  }
  return { message: response.statusText || `HTTP ${response.status}`, error: text.slice(0, 500) };
}
