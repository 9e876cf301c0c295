// Pipelines: creating a DAG of errands in one transaction, unblocking dependents as errands
// complete, keeping the pipeline's status, and deleting it with its errands. Knows nothing of HTTP.

import type { Clock } from "../clock.ts";
import type { IdempotencyKeys } from "../errands/idempotency.ts";
import type { Errand, Log } from "../errands/model.ts";
import { normalizeOptions, type PipelineHooks, startTime, toErrand } from "../errands/service.ts";
import type { EventBus } from "../events/bus.ts";
import { pageOf, pagesOf } from "../paging.ts";
import type { Store, Tx } from "../store/db.ts";
import {
  type ErrandReads,
  type ErrandRow,
  type ErrandSql,
  type ErrandWrites,
  newErrandRow,
} from "../store/errands.ts";
import { PipelineReads, type PipelineRow, PipelineWrites } from "../store/pipelines.ts";
import { validatePipeline } from "./graph.ts";
import type { Pipeline, PipelineSpec, PipelineStatus } from "./model.ts";

export interface PipelineServiceDeps {
  store: Store;
  errandSql: ErrandSql;
  clock: Clock;
  bus: EventBus;
  maxLogs: number;
  /** Idempotency-Key on pipeline creates. */
  keys?: IdempotencyKeys;
}

export class PipelineService implements PipelineHooks {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly bus: EventBus;
  private readonly maxLogs: number;
  private readonly keys: IdempotencyKeys | undefined;
  private readonly w: PipelineWrites;
  private readonly r: PipelineReads;
  private readonly errandsW: ErrandWrites;
  private readonly errandsR: ErrandReads;

  constructor(deps: PipelineServiceDeps) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.bus = deps.bus;
    this.maxLogs = deps.maxLogs;
    this.keys = deps.keys;
    this.w = new PipelineWrites(deps.store.writer);
    this.r = new PipelineReads(deps.store.reader);
    this.errandsW = deps.errandSql.writes;
    this.errandsR = deps.errandSql.reads;
  }

  /** Checks the spec only; throws BadInput naming the first problem. */
  validate(spec: PipelineSpec): void {
    validatePipeline(spec);
    const now = this.clock.now();
    for (const errand of spec.errands ?? []) startTime(normalizeOptions(errand.options ?? {}), now);
  }

  /**
   * Creates the pipeline and its errands in one transaction. Errands with no dependencies are
   * queued (`inactive`, or `scheduled` with a runAt or delay ahead; event `created`); the
   * others wait `blocked`, with no event until they are unblocked (v1), and then wait for their
   * time if it is still ahead.
   */
  create(spec: PipelineSpec, key?: string): Promise<Pipeline> {
    const graph = validatePipeline(spec);
    return this.store.write((tx) =>
      this.keys
        ? this.keys.run(key, "POST /v1/pipeline", spec, () => this.insert(tx, spec, graph))
        : this.insert(tx, spec, graph),
    );
  }

  private insert(tx: Tx, spec: PipelineSpec, graph: ReturnType<typeof validatePipeline>): Pipeline {
    const errands = spec.errands ?? [];
    const id = Bun.randomUUIDv7();
    const now = this.clock.now();
    this.w.insert.run(id, spec.name ?? "", spec.deleteOnCompleted ? 1 : 0, "inactive", now);
    const ids = errands.map((errand, i) => {
      const errandId = Bun.randomUUIDv7();
      const options = normalizeOptions(errand.options ?? {});
      const runAt = startTime(options, now);
      const later = runAt > now;
      this.errandsW.insert(
        newErrandRow({
          id: errandId,
          name: errand.name ?? "",
          type: errand.type ?? "",
          status: graph.dependencyCount[i] !== 0 ? "blocked" : later ? "scheduled" : "inactive",
          priority: options.priority ?? 0,
          options: JSON.stringify(options),
          data: errand.data === undefined ? null : JSON.stringify(errand.data),
          created: now,
          pipeline: id,
          run_at: later ? runAt : null,
        }),
      );
      return errandId;
    });
    graph.edges.forEach(([target, dependsOn], position) => {
      this.w.insertDependency.run(id, position, ids[target] ?? "", ids[dependsOn] ?? "");
    });
    const created = this.detail(this.w.get.get(id) as PipelineRow, this.w, this.errandsW);
    for (const errand of created.errands ?? []) {
      if (errand.status !== "blocked") this.bus.record(tx, "created", errand);
    }
    return created;
  }

  /** The pipeline with its errands and dependencies, or null when unknown. */
  get(id: string): Pipeline | null {
    const row = this.r.get.get(id);
    return row ? this.detail(row, this.r, this.errandsR) : null;
  }

  /** Pages of every pipeline, or of those with one status, without errands and dependencies. */
  *pages(status: PipelineStatus | undefined, after = ""): Generator<Pipeline[]> {
    for (const rows of pagesOf((from, n) => this.r.page(status, from, n), after)) {
      yield rows.map(summary);
    }
  }

  /** One page of them and the cursor of the next, or null when this is the last. */
  page(
    status: PipelineStatus | undefined,
    after: string,
    limit: number,
  ): { pipelines: Pipeline[]; next: string | null } {
    const { rows, next } = pageOf((from, n) => this.r.page(status, from, n), after, limit);
    return { pipelines: rows.map(summary), next };
  }

  /** Deletes the pipeline, its errands, their logs and its edges; false when unknown. */
  remove(id: string): Promise<boolean> {
    return this.store.write((tx) => {
      if (!this.w.get.get(id)) return false;
      this.removeIn(tx, id);
      return true;
    });
  }

  // --- hooks the errand lifecycle calls inside its write transaction ---

  onErrandChanged(tx: Tx, row: ErrandRow): void {
    if (row.pipeline === null) return;
    if (row.status === "completed") this.unblockDependents(tx, row.id);
    this.recount(tx, row.pipeline);
  }

  dependencyResults(id: string, tx?: Tx): Record<string, Record<string, unknown>> | null {
    const rows = (tx ? this.w : this.r).dependencyResults.all(id);
    if (rows.length === 0) return null;
    // Own properties whatever the names: an errand named __proto__ must not set a prototype.
    return Object.fromEntries(
      rows.map((row) => [row.name, row.results === null ? {} : JSON.parse(row.results)]),
    );
  }

  // --- inside a write transaction ---

  /** Queues each blocked dependent of a completed errand whose dependencies have all completed. */
  private unblockDependents(tx: Tx, id: string): void {
    for (const dependent of this.w.unblockable.all(id)) {
      this.errandsW.unblock(dependent, this.clock.now());
      const log: Log = {
        severity: "INFO",
        message: "errand unblocked",
        timestamp: this.clock.now(),
      };
      this.errandsW.appendLog.run(dependent.id, log.severity, log.message, log.timestamp);
      const logs = this.errandsW.keptLogs(dependent.id, this.maxLogs) as Log[];
      this.bus.record(tx, "unblocked", toErrand(dependent, this.errandsW, logs), log);
    }
  }

  /** Sets the pipeline's status from its errands'; a completed deleteOnCompleted one goes. */
  private recount(tx: Tx, id: string): void {
    const pipeline = this.w.get.get(id);
    const progress = this.w.progress.get(id);
    if (!pipeline || !progress) return;
    const status: PipelineStatus = progress.failed
      ? "failed"
      : !progress.unfinished
        ? "completed"
        : progress.started
          ? "active"
          : "inactive";
    const completed = status === "completed";
    const now = this.clock.now();
    // Settled: completed or failed with nothing left to run. clear goes by when it settled.
    const settled = (completed || status === "failed") && !progress.pending;
    const finished = settled ? now : null;
    if (
      status !== pipeline.status ||
      (completed && pipeline.ended === null) ||
      finished !== pipeline.finished
    ) {
      this.w.setStatus.run(status, completed ? now : null, finished, id);
    }
    if (completed && pipeline.delete_on_completed) this.removeIn(tx, id);
  }

  /**
   * Deletes pipelines that settled before `threshold`, each whole, until about `limit` errands
   * have gone; answers those errands (clear).
   */
  clearFinished(tx: Tx, threshold: number, limit: number): Errand[] {
    const removed: Errand[] = [];
    // Read before deleting: a statement should not walk rows its own connection deletes.
    for (const { id } of this.w.finishedBefore.all(threshold, limit)) {
      for (const errand of this.removeIn(tx, id)) removed.push(errand);
      if (removed.length >= limit) break;
    }
    return removed;
  }

  /** Deletes the pipeline, its errands (event `deleted` each) and edges; answers the errands. */
  private removeIn(tx: Tx, id: string): Errand[] {
    const removed: Errand[] = [];
    for (const { id: errandId } of this.w.errandIds.all(id)) {
      const row = this.errandsW.row(errandId);
      if (!row) continue;
      const errand = toErrand(row, this.errandsW);
      this.errandsW.remove(row);
      this.bus.record(tx, "deleted", errand);
      removed.push(errand);
    }
    this.w.removeDependencies.run(id);
    this.w.remove.run(id);
    return removed;
  }

  /** The pipeline as GET and create answer it: with its errands and its dependencies. */
  private detail(row: PipelineRow, sql: PipelineReads, errandSql: ErrandReads): Pipeline {
    const errands: Errand[] = sql.errands.all(row.id).map((e) => toErrand(e, errandSql));
    return { ...summary(row), errands, dependencies: sql.dependencies.all(row.id) };
  }
}

/** The pipeline as v1 shaped it, optional fields omitted when empty. */
function summary(row: PipelineRow): Pipeline {
  const pipeline: Pipeline = {
    id: row.id,
    name: row.name,
    status: row.status as PipelineStatus,
    startedMillis: row.started,
  };
  if (row.delete_on_completed) pipeline.deleteOnCompleted = true;
  if (row.ended !== null) pipeline.endedMillis = row.ended;
  return pipeline;
}
