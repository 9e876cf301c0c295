// The tick rule of src/schedules/ticks.ts alone: a timing and the clock's now in, the tick to
// fire and the next out. No database, no HTTP. Europe/London changes its clocks on 2026-03-29
// (01:00 GMT becomes 02:00 BST: 01:00–01:59 local never happens) and on 2026-10-25 (02:00 BST
// becomes 01:00 GMT: 01:00–01:59 local happens twice).

import { describe, expect, test } from "bun:test";
import { BadInput } from "../src/errors.ts";
import { checkTiming, dueTick, firstTick, type Timing } from "../src/schedules/ticks.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The ticks a schedule fires from `from` until `until`, each taken when it comes due. */
function ticks(timing: Timing, from: string, until: string): string[] {
  const fired: string[] = [];
  let next = firstTick(timing, at(from));
  while (next !== null && next <= at(until)) {
    // Not due a moment before its time.
    expect(dueTick(timing, next, next - 1)).toBeNull();
    const due = dueTick(timing, next, next);
    if (due === null) throw new Error("a tick at its own time must be due");
    expect(due.tick).toBe(next);
    fired.push(iso(due.tick) as string);
    next = due.next;
  }
  return fired;
}

const london = (cron: string): Timing => ({ cron, timezone: "Europe/London" });
const utc = (cron: string): Timing => ({ cron, timezone: "UTC" });

describe("cron ticks", () => {
  test("in UTC: minutes, seconds, names, nicknames", () => {
    expect(ticks(utc("*/15 * * * *"), "2026-01-01T00:00:00Z", "2026-01-01T00:45:00Z")).toEqual([
      "2026-01-01T00:15:00.000Z",
      "2026-01-01T00:30:00.000Z",
      "2026-01-01T00:45:00.000Z",
    ]);
    expect(ticks(utc("*/20 * * * * *"), "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")).toEqual([
      "2026-01-01T00:00:20.000Z",
      "2026-01-01T00:00:40.000Z",
      "2026-01-01T00:01:00.000Z",
    ]);
    // 2026-01-05 is a Monday; FEB names the month.
    expect(ticks(utc("0 9 * JAN,FEB MON"), "2026-01-01T00:00:00Z", "2026-01-20T00:00:00Z")).toEqual(
      ["2026-01-05T09:00:00.000Z", "2026-01-12T09:00:00.000Z", "2026-01-19T09:00:00.000Z"],
    );
    expect(ticks(utc("@hourly"), "2026-01-01T00:30:00Z", "2026-01-01T02:00:00Z")).toEqual([
      "2026-01-01T01:00:00.000Z",
      "2026-01-01T02:00:00.000Z",
    ]);
    expect(ticks(utc("@daily"), "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")).toEqual([
      "2026-01-02T00:00:00.000Z",
      "2026-01-03T00:00:00.000Z",
    ]);
    expect(ticks(utc("@weekly"), "2026-01-01T00:00:00Z", "2026-01-12T00:00:00Z")).toEqual([
      "2026-01-04T00:00:00.000Z",
      "2026-01-11T00:00:00.000Z",
    ]);
  });

  test("day of month and day of week: either is enough, as in Vixie cron; + asks for both", () => {
    // The 1st (a Thursday) and every Monday of January 2026.
    expect(ticks(utc("0 0 1 * MON"), "2025-12-31T12:00:00Z", "2026-01-13T00:00:00Z")).toEqual([
      "2026-01-01T00:00:00.000Z",
      "2026-01-05T00:00:00.000Z",
      "2026-01-12T00:00:00.000Z",
    ]);
    // The 1st only when it is a Monday: June 2026.
    expect(ticks(utc("0 0 1 * +MON"), "2026-01-01T12:00:00Z", "2026-07-01T00:00:00Z")).toEqual([
      "2026-06-01T00:00:00.000Z",
    ]);
  });

  test("a daily time the spring-forward gap swallows runs at the first instant after it", () => {
    // 01:30 local: 01:30 GMT, then on the 29th at 02:00 BST (01:00 UTC), then 01:30 BST.
    expect(ticks(london("30 1 * * *"), "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z")).toEqual([
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-30T00:30:00.000Z",
    ]);
    // With seconds too.
    expect(ticks(london("0 30 1 * * *"), "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z")).toEqual([
      "2026-03-29T01:00:00.000Z",
    ]);
  });

  test("a daily time the autumn clock change repeats runs once, at its first occurrence", () => {
    // 01:30 local happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT): only the first.
    expect(ticks(london("30 1 * * *"), "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z")).toEqual([
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
    ]);
    // A sweep between the two occurrences finds nothing due, and the next tick is tomorrow's.
    expect(firstTick(london("30 1 * * *"), at("2026-10-25T00:45:00Z"))).toBe(
      at("2026-10-26T01:30:00Z"),
    );
  });

  test("a list of times is a fixed time too: the gap moves it, it is not lost (croner's default would drop it)", () => {
    expect(ticks(london("30 1,13 * * *"), "2026-03-28T23:00:00Z", "2026-03-29T23:00:00Z")).toEqual([
      "2026-03-29T01:00:00.000Z",
      "2026-03-29T12:30:00.000Z",
    ]);
    expect(ticks(london("30 1,13 * * *"), "2026-10-24T23:00:00Z", "2026-10-25T23:00:00Z")).toEqual([
      "2026-10-25T00:30:00.000Z",
      "2026-10-25T13:30:00.000Z",
    ]);
  });

  test("a schedule with a wildcard or step in its time follows the clock: both passes of a repeated hour, none of a skipped one", () => {
    // Every 30 minutes stays every 30 real minutes across both changes.
    expect(ticks(london("*/30 * * * *"), "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z")).toEqual([
      "2026-03-29T00:30:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-29T01:30:00.000Z",
      "2026-03-29T02:00:00.000Z",
    ]);
    expect(ticks(london("*/30 * * * *"), "2026-10-24T23:30:00Z", "2026-10-25T02:00:00Z")).toEqual([
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-25T01:00:00.000Z",
      "2026-10-25T01:30:00.000Z",
      "2026-10-25T02:00:00.000Z",
    ]);
    // Hourly at :15: 00:15 GMT, then 02:15 BST (01:15 UTC) an hour later.
    expect(ticks(london("15 * * * *"), "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z")).toEqual([
      "2026-03-29T00:15:00.000Z",
      "2026-03-29T01:15:00.000Z",
    ]);
  });

  test("ticks missed make one catch-up, for the latest of them; the next is the first after now", () => {
    const daily = utc("0 6 * * *");
    const due = dueTick(daily, at("2026-01-02T06:00:00Z"), at("2026-01-05T12:00:00Z"));
    expect(due && { tick: iso(due.tick), next: iso(due.next) }).toEqual({
      tick: "2026-01-05T06:00:00.000Z",
      next: "2026-01-06T06:00:00.000Z",
    });
    // Across the gap: the latest missed is the one the gap moved.
    const moved = dueTick(
      london("30 1 * * *"),
      at("2026-03-28T01:30:00Z"),
      at("2026-03-29T03:00:00Z"),
    );
    expect(moved && iso(moved.tick)).toBe("2026-03-29T01:00:00.000Z");
  });
});

describe("interval ticks", () => {
  test("the first is `every` after now; missed ones collapse into one, keeping the phase", () => {
    const timing = { every: 60_000 };
    const now = at("2026-01-01T00:00:00.250Z");
    expect(firstTick(timing, now)).toBe(now + 60_000);
    expect(dueTick(timing, now + 60_000, now + 59_999)).toBeNull();
    expect(dueTick(timing, now + 60_000, now + 60_000)).toEqual({
      tick: now + 60_000,
      next: now + 120_000,
    });
    // Ten minutes and a half late: the tick of minute 10, then minute 11.
    expect(dueTick(timing, now + 60_000, now + 630_000)).toEqual({
      tick: now + 600_000,
      next: now + 660_000,
    });
  });

  test("a paused schedule (no next tick) is never due", () => {
    expect(dueTick({ every: 1000 }, null, Date.now())).toBeNull();
  });
});

describe("checking a timing", () => {
  const now = at("2026-01-01T00:00:00Z");
  const refused = (sent: Parameters<typeof checkTiming>[0]): string => {
    try {
      checkTiming(sent, now);
    } catch (error) {
      expect(error).toBeInstanceOf(BadInput);
      return (error as BadInput).detail;
    }
    throw new Error(`accepted ${JSON.stringify(sent)}`);
  };

  test("accepts cron with a time zone (UTC by default), or an interval", () => {
    expect(checkTiming({ cron: "*/5 * * * *" }, now)).toEqual({
      cron: "*/5 * * * *",
      timezone: "UTC",
    });
    expect(checkTiming({ cron: "@hourly", timezone: "Europe/London" }, now)).toEqual({
      cron: "@hourly",
      timezone: "Europe/London",
    });
    expect(checkTiming({ cron: "0 0 9 * * MON-FRI" }, now)).toEqual({
      cron: "0 0 9 * * MON-FRI",
      timezone: "UTC",
    });
    expect(checkTiming({ every: 1000 }, now)).toEqual({ every: 1000 });
  });

  test("refuses, naming the field: both or neither, a bad cron, a bad time zone", () => {
    expect(refused({})).toStartWith("body: ");
    expect(refused({ cron: "* * * * *", every: 5000 })).toStartWith("body: ");
    for (const cron of ["* * * *", "61 * * * *", "x", "", "@reboot", "* * * * * * * *"]) {
      expect(refused({ cron })).toStartWith("body.cron: ");
    }
    // 30 February never comes.
    expect(refused({ cron: "0 0 30 2 *" })).toContain("never comes due");
    for (const timezone of ["Nowhere/City", "", "+01:00", "Z"]) {
      expect(refused({ cron: "* * * * *", timezone })).toStartWith("body.timezone: ");
    }
    expect(refused({ every: 5000, timezone: "UTC" })).toStartWith("body.timezone: ");
  });
});
