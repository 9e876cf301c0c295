// Pipelines: creating a DAG of errands in one transaction, unblocking dependents as errands
// complete, keeping the pipeline's status, and deleting it with its errands. Knows nothing of
// HTTP, and nothing of SQL.

import type { Clock } from "../clock.ts";
import type { IdempotencyKeys } from "../errands/idempotency.ts";
import type { Errand } from "../errands/model.ts";
import type { PipelineHooks } from "../errands/service.ts";
import { toErrand } from "../errands/view.ts";
import type { EventBus } from "../events/bus.ts";
import { newErrand, normalizeOptions, startTime } from "../lifecycle/create.ts";
import { pipelineStatus } from "../lifecycle/pipeline.ts";
import { unblock } from "../lifecycle/schedule.ts";
import { pageOf, pagesOf } from "../paging.ts";
import type { Driver, Reads, WriteTx } from "../store/driver.ts";
import type { ErrandRecord, PipelineRecord } from "../store/records.ts";
import { validatePipeline } from "./graph.ts";
import type { Pipeline, PipelineSpec, PipelineStatus } from "./model.ts";

export interface PipelineServiceDeps {
  driver: Driver;
  clock: Clock;
  bus: EventBus;
  maxLogs: number;
  /** Idempotency-Key on pipeline creates. */
  keys?: IdempotencyKeys;
}

export class PipelineService implements PipelineHooks {
  private readonly driver: Driver;
  private readonly clock: Clock;
  private readonly bus: EventBus;
  private readonly maxLogs: number;
  private readonly keys: IdempotencyKeys | undefined;

  constructor(deps: PipelineServiceDeps) {
    this.driver = deps.driver;
    this.clock = deps.clock;
    this.bus = deps.bus;
    this.maxLogs = deps.maxLogs;
    this.keys = deps.keys;
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
    return this.driver.write((tx) => {
      const insert = () => this.insert(tx, spec, graph);
      return this.keys ? this.keys.run(tx, key, "create pipeline", spec, insert) : insert();
    });
  }

  private async insert(
    tx: WriteTx,
    spec: PipelineSpec,
    graph: ReturnType<typeof validatePipeline>,
  ): Promise<Pipeline> {
    const now = this.clock.now();
    const pipeline: PipelineRecord = {
      id: Bun.randomUUIDv7(),
      name: spec.name ?? "",
      deleteOnCompleted: spec.deleteOnCompleted === true,
      status: "inactive",
      started: now,
      ended: null,
      finished: null,
    };
    await tx.insertPipeline(pipeline);
    const records = (spec.errands ?? []).map((errand, i) =>
      newErrand(
        {
          name: errand.name ?? "",
          type: errand.type ?? "",
          options: errand.options,
          data: errand.data,
        },
        {
          id: Bun.randomUUIDv7(),
          now,
          pipeline: pipeline.id,
          blocked: graph.dependencyCount[i] !== 0,
        },
      ),
    );
    for (const record of records) await tx.insertErrand(record);
    const idOf = (i: number) => records[i]?.id ?? "";
    await tx.insertDependencies(
      pipeline.id,
      graph.edges.map(([target, dependsOn]) => [idOf(target), idOf(dependsOn)]),
    );
    const created = await this.detail(tx, pipeline);
    for (const errand of created.errands ?? []) {
      if (errand.status !== "blocked") await this.bus.record(tx, "created", errand);
    }
    return created;
  }

  /** The pipeline with its errands and dependencies, or null when unknown. */
  async get(id: string): Promise<Pipeline | null> {
    const reads = this.driver.reads;
    const pipeline = await reads.pipeline(id);
    return pipeline ? this.detail(reads, pipeline) : null;
  }

  /** Pages of every pipeline, or of those with one status, without errands and dependencies. */
  async *pages(status: PipelineStatus | undefined, after = ""): AsyncGenerator<Pipeline[]> {
    for await (const records of pagesOf(this.readPage(status), after)) {
      yield records.map(summary);
    }
  }

  /** One page of them and the cursor of the next, or null when this is the last. */
  async page(
    status: PipelineStatus | undefined,
    after: string,
    limit: number,
  ): Promise<{ pipelines: Pipeline[]; next: string | null }> {
    const { rows, next } = await pageOf(this.readPage(status), after, limit);
    return { pipelines: rows.map(summary), next };
  }

  private readPage(status: PipelineStatus | undefined) {
    return (after: string, limit: number) => this.driver.reads.pipelinePage(status, after, limit);
  }

  /** Deletes the pipeline, its errands, their logs and its edges; false when unknown. */
  remove(id: string): Promise<boolean> {
    return this.driver.write(async (tx) => {
      if (!(await tx.pipeline(id))) return false;
      await this.removeIn(tx, id);
      return true;
    });
  }

  // --- hooks the errand lifecycle calls inside its write transaction ---

  async onErrandChanged(tx: WriteTx, errand: ErrandRecord): Promise<void> {
    if (errand.pipeline === null) return;
    if (errand.status === "completed") await this.unblockDependents(tx, errand.id);
    await this.recount(tx, errand.pipeline);
  }

  async dependencyResults(
    reads: Reads,
    id: string,
  ): Promise<Record<string, Record<string, unknown>> | null> {
    const rows = await reads.dependencyResults(id);
    if (rows.length === 0) return null;
    // Own properties whatever the names: an errand named __proto__ must not set a prototype.
    return Object.fromEntries(
      rows.map((row) => [row.name, row.results === null ? {} : JSON.parse(row.results)]),
    );
  }

  /**
   * Deletes pipelines that settled before `threshold`, each whole, until about `limit` errands
   * have gone; answers those errands (clear).
   */
  async clearFinished(tx: WriteTx, threshold: number, limit: number): Promise<Errand[]> {
    const removed: Errand[] = [];
    for (const id of await tx.settledBefore(threshold, limit)) {
      for (const errand of await this.removeIn(tx, id)) removed.push(errand);
      if (removed.length >= limit) break;
    }
    return removed;
  }

  // --- inside a write transaction ---

  /** Queues each blocked dependent of a completed errand whose dependencies have all completed. */
  private async unblockDependents(tx: WriteTx, id: string): Promise<void> {
    for (const dependent of await tx.unblockable(id)) {
      const change = unblock(dependent, this.clock.now());
      await tx.saveErrand(change.errand);
      if (change.log) await tx.appendLog(dependent.id, change.log);
      const logs = await tx.keptLogs(dependent.id, this.maxLogs);
      await this.bus.record(tx, "unblocked", toErrand(change.errand, logs), change.log);
    }
  }

  /** Sets the pipeline's status from its errands'; a completed deleteOnCompleted one goes. */
  private async recount(tx: WriteTx, id: string): Promise<void> {
    const pipeline = await tx.pipeline(id);
    if (!pipeline) return;
    const next = pipelineStatus(pipeline, await tx.pipelineProgress(id), this.clock.now());
    if (next.changed) await tx.savePipeline(next.pipeline);
    if (next.remove) await this.removeIn(tx, id);
  }

  /** Deletes the pipeline, its errands (event `deleted` each) and edges; answers the errands. */
  private async removeIn(tx: WriteTx, id: string): Promise<Errand[]> {
    const removed: Errand[] = [];
    for (const record of await tx.pipelineErrands(id)) {
      const errand = toErrand(record, await tx.logs(record.id));
      await tx.removeErrand(record);
      await this.bus.record(tx, "deleted", errand);
      removed.push(errand);
    }
    await tx.removePipeline(id);
    return removed;
  }

  /** The pipeline as GET and create answer it: with its errands and its dependencies. */
  private async detail(reads: Reads, pipeline: PipelineRecord): Promise<Pipeline> {
    const records = await reads.pipelineErrands(pipeline.id);
    const logs = await reads.logsOf(records.map((r) => r.id));
    const errands = records.map((record) => toErrand(record, logs.get(record.id) ?? []));
    return { ...summary(pipeline), errands, dependencies: await reads.dependencies(pipeline.id) };
  }
}

/** The pipeline as v1 shaped it, optional fields omitted when empty. */
function summary(record: PipelineRecord): Pipeline {
  const pipeline: Pipeline = {
    id: record.id,
    name: record.name,
    status: record.status,
    startedMillis: record.started,
  };
  if (record.deleteOnCompleted) pipeline.deleteOnCompleted = true;
  if (record.ended !== null) pipeline.endedMillis = record.ended;
  return pipeline;
}
