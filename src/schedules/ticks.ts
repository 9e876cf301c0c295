// When a schedule comes due: its timing read and checked, its first tick, and at a sweep the
// tick to fire and the one after. Plain functions of the schedule and the clock's now.

import { Cron } from "croner";
import { BadInput } from "../errors.ts";

/** A cron expression in a time zone, or a fixed interval in ms. */
export type Timing = { cron: string; timezone: string } | { every: number };

/** The shortest interval: the sweep that fires ticks runs each second. */
export const MIN_EVERY_MS = 1000;

/**
 * Croner, set to read a cron expression as Vixie cron does: 5 fields or 6 (seconds first),
 * names (MON, JAN), `@hourly` and friends, day of month OR day of week (`+` before the day of
 * week asks for both). Across daylight saving, a time with no wildcard or step in its seconds,
 * minutes and hours (`30 2 * * *`, `30 1,13 * * *`) runs at the first instant after a gap that
 * swallows it, and once when the clock goes back over it; any other follows the clock, every
 * time it shows, in both passes of a repeated hour. Croner's own default counts a list or a
 * range (`30 1,13`) as following the clock, so a gap would lose it: "no-wildcard" is Vixie's rule.
 */
function cronOf(cron: string, timezone: string): Cron {
  return new Cron(cron, {
    timezone,
    mode: "5-or-6-parts",
    domAndDow: false,
    fixedTimeRule: "no-wildcard",
  });
}

/**
 * Checks a timing as a client sent it, naming the field at fault: a cron expression croner
 * reads, that comes due at least once after `now`, in an IANA time zone (UTC when left out);
 * or an interval (its range is the body schema's), which has no time zone.
 */
export function checkTiming(
  sent: { cron?: string; every?: number; timezone?: string },
  now: number,
): Timing {
  if ((sent.cron === undefined) === (sent.every === undefined)) {
    throw invalid("body", "give exactly one of cron (a cron expression) and every (ms)");
  }
  if (sent.every !== undefined) {
    if (sent.timezone !== undefined) {
      throw invalid("body.timezone", "only a cron schedule has a time zone; every counts ms");
    }
    return { every: sent.every };
  }
  const timezone = sent.timezone ?? "UTC";
  if (!isTimeZone(timezone)) {
    throw invalid(
      "body.timezone",
      `${JSON.stringify(timezone)} is not an IANA time zone such as Europe/London or UTC`,
    );
  }
  const cron = sent.cron as string;
  let parsed: Cron;
  try {
    parsed = cronOf(cron, timezone);
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^CronPattern: /, "") : "";
    throw invalid("body.cron", `${JSON.stringify(cron)} is not a cron expression: ${reason}`);
  }
  if (parsed.nextRun(new Date(now)) === null) {
    throw invalid("body.cron", `${JSON.stringify(cron)} never comes due again`);
  }
  return { cron, timezone };
}

/** An IANA name (`Europe/London`, `UTC`); not a bare offset such as `+01:00`. */
function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z]/.test(name)) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function invalid(field: string, reason: string): BadInput {
  return new BadInput("Invalid request", `${field}: ${reason}`);
}

/** The first tick after `now`: the next time the cron expression names, or now + every. */
export function firstTick(timing: Timing, now: number): number | null {
  if ("every" in timing) return now + timing.every;
  return cronOf(timing.cron, timing.timezone).nextRun(new Date(now))?.getTime() ?? null;
}

/**
 * What a sweep at `now` fires, for a schedule whose next tick is `nextRunAt`: null while it is
 * ahead; else the latest tick at or before now (ticks missed while no server ran make one
 * catch-up, not a flood), and the first tick after now, or null when the cron expression
 * names no later time. An interval keeps its phase: its ticks stay `every` apart.
 */
export function dueTick(
  timing: Timing,
  nextRunAt: number | null,
  now: number,
): { tick: number; next: number | null } | null {
  if (nextRunAt === null || nextRunAt > now) return null;
  if ("every" in timing) {
    const tick = nextRunAt + Math.floor((now - nextRunAt) / timing.every) * timing.every;
    return { tick, next: tick + timing.every };
  }
  const cron = cronOf(timing.cron, timing.timezone);
  // previousRuns counts a run earlier in the same second as the reference: now + 1 ms takes
  // in a tick at exactly now.
  const latest = cron.previousRuns(1, new Date(now + 1))[0]?.getTime() ?? nextRunAt;
  return {
    tick: Math.max(latest, nextRunAt),
    next: cron.nextRun(new Date(now))?.getTime() ?? null,
  };
}
