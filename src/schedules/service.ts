// Schedules as a service: kept, listed and removed, and fired by the sweep. A tick fires in one
// write: the due schedule is read locked, its tick recorded under a unique key, its errand
// created through the errand service's own create (event `created`), and its next tick moved
// past now, so a tick makes one errand at most, whichever instance sweeps and however often.

import type { Clock } from "../clock.ts";
import type { ErrandService } from "../errands/service.ts";
import { BadInput, NotFound } from "../errors.ts";
import { newErrand, normalizeOptions } from "../lifecycle/create.ts";
import { entry } from "../lifecycle/transition.ts";
import { pageOf, pagesOf } from "../paging.ts";
import { type Driver, deleteInBatches, type WriteTx } from "../store/driver.ts";
import type { ErrandTemplate, ScheduleRecord, ScheduleSpec } from "../store/records.ts";
import type { Schedule, ScheduleBody } from "./model.ts";
import { checkTiming, dueTick, firstTick, type Timing } from "./ticks.ts";

/** Due schedules one write fires. */
const SWEEP_BATCH = 100;
/**
 * How long a fired tick's row is kept: its unique key has done its work once the next tick is
 * recorded, and a day leaves room for any clock skew between instances.
 */
const TICK_RETENTION_MS = 24 * 3_600_000;
const PRUNE_BATCH = 10_000;
const PRUNE_ROUNDS = 10;

/** What one tick did: the errand it created, or none when `overlap: skip` held it back. */
export interface Fired {
  schedule: string;
  tick: number;
  errand: string | null;
}

export class ScheduleService {
  constructor(
    private readonly driver: Driver,
    private readonly clock: Clock,
    private readonly errands: ErrandService,
    /** Told of each tick fired, for the operator's log. */
    private readonly onFired: (fired: Fired) => void = () => {},
  ) {}

  /**
   * Creates or replaces a schedule. Its last run is kept; its next tick is worked out anew
   * when its timing changed or it is resumed, and kept otherwise (a PUT that changes nothing
   * never pushes a tick back).
   */
  async put(name: string, body: ScheduleBody): Promise<{ schedule: Schedule; created: boolean }> {
    const now = this.clock.now();
    const timing = checkTiming(body, now);
    const spec: ScheduleSpec = {
      ...timing,
      errand: template(body.errand, now),
      overlap: body.overlap ?? "allow",
    };
    const paused = body.paused ?? false;
    return this.driver.write(async (tx) => {
      const current = await tx.lockSchedule(name);
      const keepsTime =
        current !== null && !current.paused && sameTiming(timingOf(current.spec), timing);
      const record: ScheduleRecord = {
        name,
        spec,
        paused,
        nextRunAt: paused ? null : keepsTime ? current.nextRunAt : firstTick(timing, now),
        lastRunAt: current?.lastRunAt ?? null,
        lastErrandId: current?.lastErrandId ?? null,
        created: current?.created ?? now,
        updated: now,
      };
      await tx.saveSchedule(record);
      return { schedule: toSchedule(record), created: current === null };
    });
  }

  async get(name: string): Promise<Schedule> {
    const record = await this.driver.reads.schedule(name);
    if (record === null) throw notFound(name);
    return toSchedule(record);
  }

  /** Every schedule in name order, a page at a time. */
  async *pages(after = ""): AsyncGenerator<Schedule[]> {
    const read = (from: string, limit: number) => this.driver.reads.schedulePage(from, limit);
    for await (const records of pagesOf(read, after, 500, byName)) {
      yield records.map(toSchedule);
    }
  }

  /** One page in name order, and the `after` of the next or null. */
  async page(
    after: string,
    limit: number,
  ): Promise<{ schedules: Schedule[]; next: string | null }> {
    const read = (from: string, n: number) => this.driver.reads.schedulePage(from, n);
    const { rows, next } = await pageOf(read, after, limit, byName);
    return { schedules: rows.map(toSchedule), next };
  }

  /** Deletes the schedule; the errands it created stay. */
  async remove(name: string): Promise<void> {
    if (!(await this.driver.write((tx) => tx.removeSchedule(name)))) throw notFound(name);
  }

  /** Fires every schedule whose tick has come; answers how many ticks fired. */
  async fireDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const { due, fired } = await this.driver.write(async (tx) => {
        const now = this.clock.now();
        const schedules = await tx.dueSchedules(now, SWEEP_BATCH);
        const fired: Fired[] = [];
        for (const schedule of schedules) {
          const one = await this.fire(tx, schedule, now);
          if (one) fired.push(one);
        }
        return { due: schedules.length, fired };
      });
      for (const one of fired) this.onFired(one);
      total += fired.length;
      if (due < SWEEP_BATCH) return total;
    }
  }

  /** Deletes the rows of ticks fired more than a day ago. */
  pruneTicks(): Promise<number> {
    const before = this.clock.now() - TICK_RETENTION_MS;
    return deleteInBatches(
      this.driver,
      (tx, n) => tx.pruneTicks(before, n),
      PRUNE_BATCH,
      PRUNE_ROUNDS,
    );
  }

  /**
   * Fires the schedule's latest due tick (ticks missed while no server ran make this one
   * catch-up) and moves its next tick past now. A tick recorded already changes nothing but
   * the next tick.
   */
  private async fire(tx: WriteTx, schedule: ScheduleRecord, now: number): Promise<Fired | null> {
    const due = dueTick(timingOf(schedule.spec), schedule.nextRunAt, now);
    if (due === null) return null;
    let errand: string | null = null;
    const fresh = await tx.recordTick(schedule.name, due.tick, now);
    if (fresh && !(schedule.spec.overlap === "skip" && (await this.running(tx, schedule)))) {
      const note = entry(
        "INFO",
        `Created by schedule ${JSON.stringify(schedule.name)} for tick ${new Date(due.tick).toISOString()}`,
        now,
      );
      errand = (await this.errands.insert(tx, schedule.spec.errand, note)).id;
    }
    await tx.saveSchedule({
      ...schedule,
      nextRunAt: due.next,
      lastRunAt: errand === null ? schedule.lastRunAt : due.tick,
      lastErrandId: errand ?? schedule.lastErrandId,
    });
    return fresh ? { schedule: schedule.name, tick: due.tick, errand } : null;
  }

  /** Whether the schedule's last errand is still to finish: not completed, failed or deleted. */
  private async running(tx: WriteTx, schedule: ScheduleRecord): Promise<boolean> {
    if (schedule.lastErrandId === null) return false;
    const last = await tx.errand(schedule.lastErrandId);
    return last !== null && last.status !== "completed" && last.status !== "failed";
  }
}

const byName = (schedule: ScheduleRecord) => schedule.name;

/**
 * The errand a tick creates, as kept: the fields a create reads, checked now by the create's
 * own rule (runAt and delay exclude each other), so that no tick is refused later.
 */
function template(errand: ScheduleBody["errand"], now: number): ErrandTemplate {
  const options = normalizeOptions(errand.options ?? {});
  const kept: ErrandTemplate = { name: errand.name, type: errand.type };
  if (Object.keys(options).length > 0) kept.options = options;
  if (errand.data !== undefined) kept.data = errand.data;
  try {
    newErrand(kept, { id: "", now });
  } catch (error) {
    // The rule names the field of a create's body; here it is inside `errand`.
    if (error instanceof BadInput) {
      throw new BadInput(error.message, error.detail.replace(/^body\./, "body.errand."));
    }
    throw error;
  }
  return kept;
}

function timingOf(spec: ScheduleSpec): Timing {
  if (spec.every !== undefined) return { every: spec.every };
  return { cron: spec.cron ?? "", timezone: spec.timezone ?? "UTC" };
}

function sameTiming(a: Timing, b: Timing): boolean {
  if ("every" in a || "every" in b) return "every" in a && "every" in b && a.every === b.every;
  return a.cron === b.cron && a.timezone === b.timezone;
}

/** The schedule as clients see it: `cron` with its `timezone`, or `every`. */
function toSchedule(record: ScheduleRecord): Schedule {
  const { spec } = record;
  const timing = timingOf(spec);
  return {
    name: record.name,
    ...timing,
    errand: spec.errand,
    paused: record.paused,
    overlap: spec.overlap,
    nextRunAt: record.nextRunAt,
    lastRunAt: record.lastRunAt,
    lastErrandId: record.lastErrandId,
    created: record.created,
    updated: record.updated,
  };
}

function notFound(name: string): NotFound {
  return new NotFound("Schedule not found", `no schedule is named ${JSON.stringify(name)}`);
}
