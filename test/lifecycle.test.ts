// The lifecycle rules of src/lifecycle/ alone: errand values in, the errand after, its event and
// its log line out. No database, no HTTP, a fixed clock.

import { describe, expect, test } from "bun:test";
import { BadInput, Conflict, DomainError } from "../src/errors.ts";
import { claim, claimable, release } from "../src/lifecycle/claim.ts";
import { newErrand, normalizeOptions, startTime } from "../src/lifecycle/create.ts";
import {
  backoffMs,
  checkBulkStatus,
  complete,
  expire,
  expiry,
  fail,
  retry,
  setStatus,
} from "../src/lifecycle/finish.ts";
import { pipelineStatus } from "../src/lifecycle/pipeline.ts";
import { isDue, promote, unblock } from "../src/lifecycle/schedule.ts";
import {
  entry,
  keptMessage,
  MAX_LOG_MESSAGE,
  type Transition,
} from "../src/lifecycle/transition.ts";
import {
  deadlines,
  heartbeat,
  log,
  progress,
  requireActive,
  requireAttempt,
} from "../src/lifecycle/working.ts";
import {
  type ErrandRecord,
  EVENT_NAMES,
  type Options,
  type PipelineProgress,
  type PipelineRecord,
  STATUSES,
  type Status,
} from "../src/store/records.ts";

const NOW = Date.UTC(2026, 0, 1, 12);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** A new, queued errand created at NOW (scheduled or blocked as its options and init say). */
function queued(
  options: Options = {},
  init: { pipeline?: string; blocked?: boolean; now?: number } = {},
): ErrandRecord {
  return newErrand({ name: "job", type: "work", options }, { id: "e1", now: NOW, ...init });
}

/** An errand claimed at `now` after `attempts` earlier attempts. */
function claimed(options: Options = {}, attempts = 0, now = NOW): ErrandRecord {
  return claim({ ...queued(options), attempts }, now).errand;
}

/** A plausible errand in each status, as the rules themselves leave it. */
function inStatus(status: Status, options: Options = {}): ErrandRecord {
  switch (status) {
    case "blocked":
      return queued(options, { pipeline: "p1", blocked: true });
    case "inactive":
      return queued(options);
    case "scheduled":
      return queued({ ...options, delay: MINUTE });
    case "active":
      return claimed(options);
    case "failed":
      // Claimed once past its retries, so the failure is final.
      return fail(claimed(options, options.retries ?? 0), "boom", NOW + SECOND).errand;
    case "completed":
      return complete(claimed(options), { ok: true }, NOW + SECOND).errand;
  }
}

/** The domain error the action throws; fails the test when it throws nothing or another error. */
function refusal(action: () => unknown): DomainError {
  try {
    action();
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error("expected the rule to refuse");
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

describe("create", () => {
  test("options keep only the known keys, without zero, false, null or undefined values", () => {
    const sent = {
      ttl: 0,
      retries: 2,
      priority: 0,
      deleteOnCompleted: false,
      heartbeat: 10,
      runAt: null,
      delay: undefined,
      backoff: { type: "fixed", delay: 500 },
      colour: "blue",
    } as unknown as Options;
    expect(normalizeOptions(sent)).toStrictEqual({
      retries: 2,
      heartbeat: 10,
      backoff: { type: "fixed", delay: 500 },
    });
    expect(normalizeOptions({ ttl: 5, priority: -3, deleteOnCompleted: true })).toStrictEqual({
      ttl: 5,
      priority: -3,
      deleteOnCompleted: true,
    });
  });

  test("the start time is runAt, or now plus delay, or now; runAt with delay is 400", () => {
    expect(startTime({ runAt: NOW + HOUR }, NOW)).toBe(NOW + HOUR);
    expect(startTime({ runAt: NOW - HOUR }, NOW)).toBe(NOW - HOUR);
    expect(startTime({ delay: 5 * SECOND }, NOW)).toBe(NOW + 5 * SECOND);
    expect(startTime({}, NOW)).toBe(NOW);
    const both = refusal(() => startTime({ runAt: NOW + HOUR, delay: SECOND }, NOW));
    expect(both).toBeInstanceOf(BadInput);
    expect(both.status).toBe(400);
    expect(both.detail).toBe("body.options: give runAt or delay, not both");
  });

  test("a new errand is inactive at attempt 0, nothing started, its data kept as JSON text", () => {
    const errand = newErrand(
      {
        name: "Process file 7",
        type: "extract",
        options: { ttl: 60, retries: 2, priority: 500, deleteOnCompleted: false },
        data: { file: "s3://bucket/key" },
      },
      { id: "0193", now: NOW },
    );
    expect(errand).toStrictEqual({
      id: "0193",
      name: "Process file 7",
      type: "extract",
      status: "inactive",
      priority: 500,
      options: { ttl: 60, retries: 2, priority: 500 },
      data: '{"file":"s3://bucket/key"}',
      results: null,
      created: NOW,
      progress: 0,
      attempts: 0,
      started: null,
      failed: null,
      completed: null,
      finished: null,
      ttlDeadline: null,
      heartbeatDeadline: null,
      runAt: null,
      pipeline: null,
    });
  });

  test("a new errand without options or data has priority 0, empty options and null data", () => {
    const errand = newErrand({ name: "n", type: "t" }, { id: "x", now: NOW });
    expect(errand.priority).toBe(0);
    expect(errand.options).toStrictEqual({});
    expect(errand.data).toBeNull();
    expect(errand.pipeline).toBeNull();
  });

  test("an errand created with runAt ahead is scheduled, with delay too, both is 400", () => {
    const at = queued({ runAt: NOW + HOUR });
    expect(at.status).toBe("scheduled");
    expect(at.runAt).toBe(NOW + HOUR);
    const later = queued({ delay: 30 * SECOND });
    expect(later.status).toBe("scheduled");
    expect(later.runAt).toBe(NOW + 30 * SECOND);
    expect(later.options).toStrictEqual({ delay: 30 * SECOND });
    const both = refusal(() => queued({ runAt: NOW + HOUR, delay: SECOND }));
    expect(both).toBeInstanceOf(BadInput);
    expect(both.status).toBe(400);
  });

  test("an errand whose runAt is now or past is queued at once, with no runAt", () => {
    for (const runAt of [NOW, NOW - 1, 1]) {
      const errand = queued({ runAt });
      expect(errand.status).toBe("inactive");
      expect(errand.runAt).toBeNull();
    }
  });

  test("a zero runAt or delay counts as absent (omitempty), so it never conflicts with the other", () => {
    expect(queued({ runAt: 0, delay: MINUTE }).runAt).toBe(NOW + MINUTE);
    expect(queued({ runAt: NOW + HOUR, delay: 0 }).runAt).toBe(NOW + HOUR);
    expect(queued({ runAt: 0 }).status).toBe("inactive");
  });

  test("a blocked errand keeps its runAt for when it is unblocked", () => {
    const waiting = queued({ runAt: NOW + HOUR }, { pipeline: "p1", blocked: true });
    expect(waiting.status).toBe("blocked");
    expect(waiting.runAt).toBe(NOW + HOUR);
    expect(waiting.pipeline).toBe("p1");
    const soon = queued({ delay: MINUTE }, { pipeline: "p1", blocked: true });
    expect(soon.status).toBe("blocked");
    expect(soon.runAt).toBe(NOW + MINUTE);
    const plain = queued({}, { pipeline: "p1", blocked: true });
    expect(plain.status).toBe("blocked");
    expect(plain.runAt).toBeNull();
  });

  test("a pipeline errand with no dependencies is queued or scheduled like any other", () => {
    expect(queued({}, { pipeline: "p1" })).toMatchObject({ status: "inactive", pipeline: "p1" });
    expect(queued({ delay: MINUTE }, { pipeline: "p1" })).toMatchObject({
      status: "scheduled",
      runAt: NOW + MINUTE,
    });
  });
});

describe("claim and release", () => {
  test("only an inactive errand is claimable", () => {
    for (const status of STATUSES) {
      expect(claimable(inStatus(status))).toBe(status === "inactive");
    }
  });

  test("a claim makes the errand active at its next attempt with deadlines from now", () => {
    const before: ErrandRecord = {
      ...queued({ ttl: 2, heartbeat: 10, retries: 3 }),
      attempts: 1,
      progress: 40,
      failed: NOW - MINUTE,
      started: NOW - HOUR,
    };
    const at = NOW + 5 * SECOND;
    expect(claim(before, at)).toStrictEqual({
      errand: {
        ...before,
        status: "active",
        started: at,
        attempts: 2,
        progress: 0,
        finished: null,
        runAt: null,
        ttlDeadline: at + 2 * MINUTE,
        heartbeatDeadline: at + 10 * SECOND,
      },
      event: "processing",
      log: { severity: "INFO", message: "Started!", timestamp: at },
    });
  });

  test("a claim without ttl or heartbeat sets no deadlines", () => {
    const after = claim(queued(), NOW).errand;
    expect(after.ttlDeadline).toBeNull();
    expect(after.heartbeatDeadline).toBeNull();
    expect(after.attempts).toBe(1);
  });

  test("a ttl past the largest safe integer of milliseconds is kept at that integer (never)", () => {
    const after = claim(queued({ ttl: 1e12 }), NOW).errand;
    expect(after.ttlDeadline).toBe(Number.MAX_SAFE_INTEGER);
    expect(deadlines(queued({ ttl: 1e12, heartbeat: 5 }), NOW)).toStrictEqual({
      ttlDeadline: Number.MAX_SAFE_INTEGER,
      heartbeatDeadline: NOW + 5 * SECOND,
    });
    expect(deadlines(queued(), NOW)).toStrictEqual({ ttlDeadline: null, heartbeatDeadline: null });
  });

  test("release gives the attempt back; a release of another attempt is null", () => {
    const first = claimed({ ttl: 1, heartbeat: 5 }, 0, NOW);
    const second = { ...claimed({ ttl: 1, heartbeat: 5 }, 1, NOW + MINUTE), progress: 30 };
    const at = NOW + MINUTE + SECOND;
    expect(release(second, 2, at)).toStrictEqual({
      errand: {
        ...second,
        status: "inactive",
        attempts: 1,
        progress: 0,
        started: NOW + MINUTE,
        ttlDeadline: null,
        heartbeatDeadline: null,
      },
      event: "updated",
      log: { severity: "INFO", message: "Released: the claiming worker went away", timestamp: at },
    });
    expect(release(second, 1, at)).toBeNull();
    expect(release(second, 3, at)).toBeNull();
    expect(release(first, 2, at)).toBeNull();
  });

  test("a release of a first attempt leaves the errand as never started", () => {
    const after = release(claimed({}, 0, NOW), 1, NOW + SECOND);
    expect(after?.errand).toStrictEqual(queued());
  });

  test("a release of an errand that is no longer active is null, even at its attempt", () => {
    for (const status of STATUSES) {
      if (status === "active") continue;
      const errand = { ...inStatus(status), attempts: 1 };
      expect(release(errand, 1, NOW)).toBeNull();
    }
  });

  test("a release of attempt 0, which no claim gave, is null", () => {
    // An operator's bulk update can make an errand active without a claim.
    const forced = setStatus(queued(), "active", NOW).errand;
    expect(forced.attempts).toBe(0);
    expect(release(forced, 0, NOW)).toBeNull();
  });
});

describe("while a worker holds it", () => {
  test("without an attempt the lease check passes whatever the state", () => {
    for (const status of STATUSES) {
      expect(() => requireAttempt(inStatus(status), undefined)).not.toThrow();
    }
    expect(() => requireAttempt(claimed({}, 2), 3)).not.toThrow();
  });

  test("a stale attempt is refused with 409", () => {
    const current = claimed({ heartbeat: 5 }, 2);
    const stale = 2;
    const calls: Array<() => unknown> = [
      () => requireAttempt(current, stale),
      () => progress(current, 50, NOW, stale),
      () => log(current, { severity: "INFO", message: "late" }, NOW, stale),
      () => heartbeat(current, NOW, stale),
      () => fail(current, "late", NOW, stale),
      () => complete(current, { late: true }, NOW, stale),
    ];
    for (const call of calls) {
      const refused = refusal(call);
      expect(refused).toBeInstanceOf(Conflict);
      expect(refused.status).toBe(409);
      expect(refused.message).toBe("Attempt superseded");
      expect(refused.detail).toBe("errand e1 is active at attempt 3, not active at attempt 2");
    }
  });

  test("the attempt of an errand no longer active is refused with 409, even if it matches", () => {
    for (const status of STATUSES) {
      if (status === "active") continue;
      const errand = { ...inStatus(status), attempts: 1 };
      const refused = refusal(() => requireAttempt(errand, 1));
      expect(refused.status).toBe(409);
      expect(refused.message).toBe("Attempt superseded");
    }
    const retried = retry(claimed(), NOW).errand;
    expect(refusal(() => complete(retried, undefined, NOW, 1)).status).toBe(409);
  });

  test("progress, log and heartbeat are refused with 409 unless the errand is active", () => {
    for (const status of STATUSES) {
      const errand = inStatus(status);
      if (status === "active") {
        expect(() => requireActive(errand, "do it")).not.toThrow();
        continue;
      }
      const calls: Array<[() => unknown, string]> = [
        [() => progress(errand, 10, NOW), "update its progress"],
        [() => log(errand, { severity: "INFO", message: "x" }, NOW), "log to it"],
        [() => heartbeat(errand, NOW), "send a heartbeat"],
      ];
      for (const [call, action] of calls) {
        const refused = refusal(call);
        expect(refused).toBeInstanceOf(Conflict);
        expect(refused.message).toBe("Errand must be in active state");
        expect(refused.detail).toBe(`errand e1 is ${status}: only an active errand can ${action}`);
      }
    }
  });

  test("progress sets the value and pushes the heartbeat deadline on from now, no log line", () => {
    const errand = claimed({ ttl: 1, heartbeat: 5 }, 0, NOW);
    const at = NOW + 3 * SECOND;
    expect(progress(errand, 60, at, 1)).toStrictEqual({
      errand: { ...errand, progress: 60, heartbeatDeadline: at + 5 * SECOND },
      event: "updated",
      log: null,
    });
  });

  test("progress of an errand without a heartbeat leaves its deadlines alone", () => {
    const errand = claimed({ ttl: 1 }, 0, NOW);
    expect(progress(errand, 100, NOW + SECOND)).toStrictEqual({
      errand: { ...errand, progress: 100 },
      event: "updated",
      log: null,
    });
  });

  test("a log line is recorded as sent, and counts as a sign of life", () => {
    const errand = claimed({ heartbeat: 30 }, 0, NOW);
    const at = NOW + 20 * SECOND;
    expect(log(errand, { severity: "WARNING", message: "disk almost full" }, at)).toStrictEqual({
      errand: { ...errand, heartbeatDeadline: at + 30 * SECOND },
      event: "updated",
      log: { severity: "WARNING", message: "disk almost full", timestamp: at },
    });
    const quiet = claimed({}, 0, NOW);
    expect(log(quiet, { severity: "ERROR", message: "oops" }, at).errand).toStrictEqual(quiet);
  });

  test("a heartbeat only pushes the heartbeat deadline on, with no event and no log line", () => {
    const errand = claimed({ ttl: 1, heartbeat: 5 }, 0, NOW);
    const at = NOW + 4 * SECOND;
    expect(heartbeat(errand, at, 1)).toStrictEqual({
      errand: { ...errand, heartbeatDeadline: at + 5 * SECOND },
      event: null,
      log: null,
    });
    const quiet = claimed({}, 0, NOW);
    expect(heartbeat(quiet, at)).toStrictEqual({ errand: quiet, event: null, log: null });
  });
});

describe("log lines", () => {
  test("an entry is the severity, the message and now", () => {
    expect(entry("ERROR", "boom", NOW)).toStrictEqual({
      severity: "ERROR",
      message: "boom",
      timestamp: NOW,
    });
  });

  test("a log message of up to 10,000 characters is kept whole", () => {
    expect(MAX_LOG_MESSAGE).toBe(10_000);
    const longest = "a".repeat(MAX_LOG_MESSAGE);
    expect(keptMessage(longest)).toBe(longest);
    const endsInPair = `${"a".repeat(MAX_LOG_MESSAGE - 2)}😀`;
    expect(keptMessage(endsInPair)).toBe(endsInPair);
    expect(keptMessage("")).toBe("");
  });

  test("a log message longer than 10,000 characters is cut, saying how much was cut", () => {
    const message = `${"a".repeat(MAX_LOG_MESSAGE)}bcd`;
    expect(keptMessage(message)).toBe(`${"a".repeat(MAX_LOG_MESSAGE)}… [3 more characters cut]`);
    expect(keptMessage(`${"a".repeat(MAX_LOG_MESSAGE)}b`)).toBe(
      `${"a".repeat(MAX_LOG_MESSAGE)}… [1 more characters cut]`,
    );
  });

  test("a log message longer than 10,000 characters is cut without splitting a surrogate pair", () => {
    // The pair straddles the cut: its high half is the 10,000th character.
    const straddling = `${"a".repeat(MAX_LOG_MESSAGE - 1)}😀b`;
    expect(keptMessage(straddling)).toBe(
      `${"a".repeat(MAX_LOG_MESSAGE - 1)}… [3 more characters cut]`,
    );
    // The pair ends exactly at the cut: kept whole.
    const before = `${"a".repeat(MAX_LOG_MESSAGE - 2)}😀b`;
    expect(keptMessage(before)).toBe(
      `${"a".repeat(MAX_LOG_MESSAGE - 2)}😀… [1 more characters cut]`,
    );
    for (const kept of [keptMessage(straddling), keptMessage(before)]) {
      expect(kept.isWellFormed()).toBe(true);
    }
  });

  test("log lines and failure reasons go through the same cut", () => {
    const long = "x".repeat(MAX_LOG_MESSAGE + 5);
    const cut = `${"x".repeat(MAX_LOG_MESSAGE)}… [5 more characters cut]`;
    expect(log(claimed(), { severity: "INFO", message: long }, NOW).log?.message).toBe(cut);
    expect(fail(claimed(), long, NOW).log?.message).toBe(cut);
  });
});

describe("complete", () => {
  test("completing sets progress 100, completed and finished now, results as JSON text, no deadlines", () => {
    const errand = { ...claimed({ ttl: 1, heartbeat: 5 }, 0, NOW), progress: 70 };
    const at = NOW + 10 * SECOND;
    expect(complete(errand, { rows: 42 }, at, 1)).toStrictEqual({
      errand: {
        ...errand,
        status: "completed",
        completed: at,
        finished: at,
        progress: 100,
        results: '{"rows":42}',
        ttlDeadline: null,
        heartbeatDeadline: null,
        runAt: null,
      },
      event: "completed",
      log: { severity: "INFO", message: "Completed!", timestamp: at },
    });
  });

  test("completing without results keeps the results stored before", () => {
    const done = { ...claimed(), results: '{"kept":1}' };
    expect(complete(done, undefined, NOW).errand.results).toBe('{"kept":1}');
    expect(complete(claimed(), undefined, NOW).errand.results).toBeNull();
    expect(complete(done, {}, NOW).errand.results).toBe("{}");
  });

  test("completing is allowed from any state but blocked, as in v1", () => {
    for (const status of ["inactive", "scheduled", "failed", "completed"] as const) {
      const after = complete(inStatus(status), undefined, NOW + HOUR).errand;
      expect(after.status).toBe("completed");
      expect(after.finished).toBe(NOW + HOUR);
      expect(after.runAt).toBeNull();
    }
  });

  test("a blocked errand cannot be failed, completed or retried (409)", () => {
    const blocked = inStatus("blocked");
    const calls: Array<[() => unknown, string]> = [
      [() => complete(blocked, undefined, NOW), "Cannot complete a blocked errand"],
      [() => fail(blocked, "no", NOW), "Cannot fail a blocked errand"],
      [() => retry(blocked, NOW), "Cannot retry errand"],
    ];
    for (const [call, message] of calls) {
      const refused = refusal(call);
      expect(refused).toBeInstanceOf(Conflict);
      expect(refused.status).toBe(409);
      expect(refused.message).toBe(message);
    }
  });
});

describe("fail and backoff", () => {
  test("without a backoff a re-queued errand waits nothing", () => {
    expect(backoffMs({}, 1)).toBe(0);
    expect(backoffMs({ retries: 5 }, 4)).toBe(0);
  });

  test("a fixed backoff waits its delay at every attempt", () => {
    for (const attempts of [0, 1, 2, 10, 50]) {
      expect(backoffMs({ backoff: { type: "fixed", delay: 7 * HOUR } }, attempts)).toBe(7 * HOUR);
    }
  });

  test("exponential backoff doubles per attempt and stops at one hour", () => {
    const options: Options = { backoff: { type: "exponential", delay: SECOND } };
    const waits = [0, 1, 2, 3, 4, 12, 13, 100, 2000].map((n) => backoffMs(options, n));
    expect(waits).toEqual([
      SECOND,
      SECOND,
      2 * SECOND,
      4 * SECOND,
      8 * SECOND,
      2048 * SECOND,
      HOUR,
      HOUR,
      HOUR,
    ]);
    expect(backoffMs({ backoff: { type: "exponential", delay: 2 * HOUR } }, 1)).toBe(HOUR);
  });

  test("a failure with retries left re-queues, after the backoff when one is set", () => {
    const errand = { ...claimed({ ttl: 1, heartbeat: 5, retries: 2 }, 0, NOW), progress: 50 };
    const at = NOW + 10 * SECOND;
    expect(fail(errand, "boom", at, 1)).toStrictEqual({
      errand: {
        ...errand,
        status: "inactive",
        failed: at,
        finished: null,
        progress: 0,
        ttlDeadline: null,
        heartbeatDeadline: null,
        runAt: null,
      },
      event: "failed",
      log: { severity: "ERROR", message: "boom", timestamp: at },
    });
    const fixed = claimed({ retries: 2, backoff: { type: "fixed", delay: 5 * SECOND } }, 0, NOW);
    expect(fail(fixed, "boom", at).errand).toMatchObject({
      status: "scheduled",
      runAt: at + 5 * SECOND,
      finished: null,
      failed: at,
    });
    const exponential = claimed({ retries: 3, backoff: { type: "exponential", delay: SECOND } }, 2);
    expect(exponential.attempts).toBe(3);
    expect(fail(exponential, "boom", at).errand).toMatchObject({
      status: "scheduled",
      runAt: at + 4 * SECOND,
    });
  });

  test("the attempt that uses the last retry re-queues; the one after fails for good", () => {
    const last = claimed({ retries: 2 }, 1);
    expect(last.attempts).toBe(2);
    expect(fail(last, "boom", NOW).errand.status).toBe("inactive");
    const over = claimed({ retries: 2, backoff: { type: "fixed", delay: SECOND } }, 2);
    expect(over.attempts).toBe(3);
    expect(fail(over, "boom", NOW + SECOND).errand).toMatchObject({
      status: "failed",
      failed: NOW + SECOND,
      finished: NOW + SECOND,
      runAt: null,
    });
  });

  test("a failure without retries is final: failed and finished now, deadlines cleared", () => {
    const errand = claimed({ ttl: 1, heartbeat: 5, backoff: { type: "fixed", delay: SECOND } });
    const at = NOW + 2 * SECOND;
    expect(fail(errand, "nope", at)).toStrictEqual({
      errand: {
        ...errand,
        status: "failed",
        failed: at,
        finished: at,
        progress: 0,
        ttlDeadline: null,
        heartbeatDeadline: null,
        runAt: null,
      },
      event: "failed",
      log: { severity: "ERROR", message: "nope", timestamp: at },
    });
  });

  test("failing is allowed from any state but blocked, as in v1", () => {
    for (const status of ["inactive", "scheduled", "failed", "completed"] as const) {
      const after = fail(inStatus(status), "by hand", NOW + HOUR).errand;
      expect(after.status).toBe("failed");
      expect(after.finished).toBe(NOW + HOUR);
      expect(after.runAt).toBeNull();
    }
  });
});

describe("expiry", () => {
  test("expiry: which deadline passed", () => {
    const errand = claimed({ ttl: 1, heartbeat: 10 }, 0, NOW);
    expect(expiry(errand, NOW)).toBeNull();
    expect(expiry(errand, NOW + 10 * SECOND - 1)).toBeNull();
    expect(expiry(errand, NOW + 10 * SECOND)).toBe("Heartbeat timeout");
    // Both passed: the TTL is the one named.
    expect(expiry(errand, NOW + MINUTE)).toBe("TTL Expired");
    const kept = heartbeat(errand, NOW + 55 * SECOND).errand;
    expect(expiry(kept, NOW + MINUTE - 1)).toBeNull();
    expect(expiry(kept, NOW + MINUTE)).toBe("TTL Expired");
    expect(expiry(claimed({}, 0, NOW), NOW + 1000 * HOUR)).toBeNull();
  });

  test("an errand that is not active never expires, whatever deadlines it carries", () => {
    for (const status of STATUSES) {
      if (status === "active") continue;
      const errand = { ...inStatus(status), ttlDeadline: NOW, heartbeatDeadline: NOW };
      expect(expiry(errand, NOW + HOUR)).toBeNull();
    }
  });

  test("an expired errand fails with the reason as its log line, under the same retry rule", () => {
    const at = NOW + MINUTE;
    const once = claimed({ ttl: 1 }, 0, NOW);
    expect(expire(once, "TTL Expired", at)).toStrictEqual(fail(once, "TTL Expired", at));
    expect(expire(once, "TTL Expired", at)).toMatchObject({
      errand: { status: "failed", finished: at, ttlDeadline: null },
      event: "failed",
      log: { severity: "ERROR", message: "TTL Expired", timestamp: at },
    });
    const again = claimed({ heartbeat: 5, retries: 1 }, 0, NOW);
    expect(expire(again, "Heartbeat timeout", at)).toMatchObject({
      errand: { status: "inactive", finished: null, heartbeatDeadline: null },
      log: { severity: "ERROR", message: "Heartbeat timeout" },
    });
  });
});

describe("retry", () => {
  test("retry of an active, failed or completed errand queues it again, attempts kept", () => {
    for (const status of ["active", "failed", "completed"] as const) {
      const errand = { ...inStatus(status, { ttl: 1, heartbeat: 5 }), progress: 40 };
      const at = NOW + HOUR;
      expect(retry(errand, at)).toStrictEqual({
        errand: {
          ...errand,
          status: "inactive",
          progress: 0,
          finished: null,
          ttlDeadline: null,
          heartbeatDeadline: null,
          runAt: null,
        },
        event: "retry",
        log: { severity: "INFO", message: "Retrying!", timestamp: at },
      });
    }
  });

  test("retry of an inactive, blocked or scheduled errand is 409", () => {
    for (const status of ["inactive", "blocked", "scheduled"] as const) {
      const refused = refusal(() => retry(inStatus(status), NOW));
      expect(refused).toBeInstanceOf(Conflict);
      expect(refused.status).toBe(409);
      expect(refused.message).toBe("Cannot retry errand");
      expect(refused.detail).toBe(
        `errand e1 is ${status}: only an active, failed or completed errand can be retried`,
      );
    }
  });
});

describe("bulk update", () => {
  test("a bulk update to scheduled is refused", () => {
    for (const check of [
      () => checkBulkStatus("scheduled"),
      () => setStatus(inStatus("inactive"), "scheduled", NOW),
    ]) {
      const refused = refusal(check);
      expect(refused).toBeInstanceOf(BadInput);
      expect(refused.status).toBe(400);
      expect(refused.detail).toBe("body.status: scheduled needs a time; use retry instead");
    }
    for (const status of STATUSES) {
      if (status !== "scheduled") expect(() => checkBulkStatus(status)).not.toThrow();
    }
  });

  test("a bulk update to active starts TTL and heartbeat deadlines", () => {
    const errand = queued({ ttl: 2, heartbeat: 5 });
    const at = NOW + MINUTE;
    expect(setStatus(errand, "active", at)).toStrictEqual({
      errand: {
        ...errand,
        status: "active",
        started: at,
        ttlDeadline: at + 2 * MINUTE,
        heartbeatDeadline: at + 5 * SECOND,
      },
      event: "updated",
      log: null,
    });
    // An errand that ran before keeps its start; the attempt count is the claim's business.
    const ran = inStatus("failed", { ttl: 2 });
    const again = setStatus(ran, "active", at).errand;
    expect(again).toMatchObject({
      status: "active",
      started: NOW,
      attempts: 1,
      finished: null,
      ttlDeadline: at + 2 * MINUTE,
    });
  });

  test("a bulk update to completed or failed says when, and ends deadlines", () => {
    const errand = { ...claimed({ ttl: 1, heartbeat: 5 }), progress: 30 };
    const at = NOW + SECOND;
    expect(setStatus(errand, "completed", at)).toStrictEqual({
      errand: {
        ...errand,
        status: "completed",
        completed: at,
        finished: at,
        ttlDeadline: null,
        heartbeatDeadline: null,
      },
      event: "updated",
      log: null,
    });
    expect(setStatus(errand, "failed", at).errand).toStrictEqual({
      ...errand,
      status: "failed",
      failed: at,
      finished: at,
      ttlDeadline: null,
      heartbeatDeadline: null,
    });
  });

  test("a bulk update to inactive or blocked clears finished, deadlines and runAt", () => {
    const done = inStatus("completed");
    expect(setStatus(done, "inactive", NOW + HOUR).errand).toStrictEqual({
      ...done,
      status: "inactive",
      finished: null,
    });
    const scheduled = inStatus("scheduled");
    expect(setStatus(scheduled, "inactive", NOW).errand).toMatchObject({
      status: "inactive",
      runAt: null,
    });
    const running = claimed({ ttl: 1, heartbeat: 5 });
    expect(setStatus(running, "blocked", NOW).errand).toMatchObject({
      status: "blocked",
      ttlDeadline: null,
      heartbeatDeadline: null,
      finished: null,
    });
  });
});

describe("schedules and dependencies", () => {
  test("a scheduled errand is due once its runAt is reached, never before, nor in another status", () => {
    const errand = queued({ delay: MINUTE });
    expect(isDue(errand, NOW)).toBe(false);
    expect(isDue(errand, NOW + MINUTE - 1)).toBe(false);
    expect(isDue(errand, NOW + MINUTE)).toBe(true);
    expect(isDue(errand, NOW + HOUR)).toBe(true);
    const waiting = queued({ delay: MINUTE }, { pipeline: "p1", blocked: true });
    expect(isDue(waiting, NOW + HOUR)).toBe(false);
    expect(isDue({ ...errand, runAt: null }, NOW + HOUR)).toBe(false);
  });

  test("a due scheduled errand is queued, event updated, no log line", () => {
    const errand = queued({ delay: MINUTE });
    expect(promote(errand)).toStrictEqual({
      errand: { ...errand, status: "inactive", runAt: null },
      event: "updated",
      log: null,
    });
    expect(promote(errand).errand).toStrictEqual({ ...queued(), options: { delay: MINUTE } });
  });

  test("unblock queues an errand with no start time ahead", () => {
    const errand = queued({}, { pipeline: "p1", blocked: true });
    const at = NOW + MINUTE;
    expect(unblock(errand, at)).toStrictEqual({
      errand: { ...errand, status: "inactive", runAt: null },
      event: "unblocked",
      log: { severity: "INFO", message: "errand unblocked", timestamp: at },
    });
    const passed = queued({ delay: MINUTE }, { pipeline: "p1", blocked: true });
    expect(unblock(passed, NOW + MINUTE).errand).toMatchObject({ status: "inactive", runAt: null });
  });

  test("unblock with a runAt still ahead schedules it", () => {
    const errand = queued({ runAt: NOW + HOUR }, { pipeline: "p1", blocked: true });
    const at = NOW + MINUTE;
    expect(unblock(errand, at)).toStrictEqual({
      errand: { ...errand, status: "scheduled", runAt: NOW + HOUR },
      event: "unblocked",
      log: { severity: "INFO", message: "errand unblocked", timestamp: at },
    });
    expect(isDue(unblock(errand, at).errand, NOW + HOUR)).toBe(true);
  });
});

describe("pipeline status", () => {
  const pipeline: PipelineRecord = {
    id: "p1",
    name: "report",
    deleteOnCompleted: false,
    status: "inactive",
    started: NOW,
    ended: null,
    finished: null,
  };
  const progressOf = (changes: Partial<PipelineProgress>): PipelineProgress => ({
    anyFailed: false,
    anyUnfinished: true,
    anyStarted: false,
    anyPending: true,
    ...changes,
  });
  const at = NOW + MINUTE;

  test("pipeline status: inactive until an errand has started, then active", () => {
    expect(pipelineStatus(pipeline, progressOf({}), at)).toStrictEqual({
      pipeline,
      changed: false,
      remove: false,
    });
    expect(pipelineStatus(pipeline, progressOf({ anyStarted: true }), at)).toStrictEqual({
      pipeline: { ...pipeline, status: "active" },
      changed: true,
      remove: false,
    });
  });

  test("pipeline status: failed wins over everything else", () => {
    for (const anyUnfinished of [true, false]) {
      for (const anyStarted of [true, false]) {
        const next = pipelineStatus(
          pipeline,
          progressOf({ anyFailed: true, anyUnfinished, anyStarted, anyPending: true }),
          at,
        );
        expect(next.pipeline.status).toBe("failed");
        expect(next.pipeline.ended).toBeNull();
        expect(next.remove).toBe(false);
      }
    }
  });

  test("pipeline status: completed when nothing is unfinished, ended set once", () => {
    const done = progressOf({ anyUnfinished: false, anyStarted: true, anyPending: false });
    const first = pipelineStatus({ ...pipeline, status: "active" }, done, at);
    expect(first).toStrictEqual({
      pipeline: { ...pipeline, status: "completed", ended: at, finished: at },
      changed: true,
      remove: false,
    });
    // Active again (a retry), then completed again: ended stays at the first completion.
    const reopened = pipelineStatus(first.pipeline, progressOf({ anyStarted: true }), at + MINUTE);
    expect(reopened.pipeline).toStrictEqual({
      ...pipeline,
      status: "active",
      ended: at,
      finished: null,
    });
    const again = pipelineStatus(reopened.pipeline, done, at + HOUR);
    expect(again.pipeline).toMatchObject({ status: "completed", ended: at, finished: at + HOUR });
  });

  test("pipeline status: settled (finished now) only when completed or failed with nothing pending", () => {
    const failedPending = pipelineStatus(
      pipeline,
      progressOf({ anyFailed: true, anyStarted: true, anyPending: true }),
      at,
    );
    expect(failedPending.pipeline.finished).toBeNull();
    const failedIdle = pipelineStatus(
      pipeline,
      progressOf({ anyFailed: true, anyStarted: true, anyPending: false }),
      at,
    );
    expect(failedIdle.pipeline).toMatchObject({ status: "failed", finished: at, ended: null });
    const running = pipelineStatus(
      pipeline,
      progressOf({ anyStarted: true, anyPending: false }),
      at,
    );
    expect(running.pipeline).toMatchObject({ status: "active", finished: null });
    // Settled already: a later change moves finished on, since clear goes by quiet time.
    const later = pipelineStatus(
      failedIdle.pipeline,
      progressOf({ anyFailed: true, anyStarted: true, anyPending: false }),
      at + HOUR,
    );
    expect(later).toMatchObject({ pipeline: { finished: at + HOUR }, changed: true });
  });

  test("pipeline status: remove only when completed with deleteOnCompleted", () => {
    const done = progressOf({ anyUnfinished: false, anyStarted: true, anyPending: false });
    const deleting = { ...pipeline, deleteOnCompleted: true };
    expect(pipelineStatus(deleting, done, at).remove).toBe(true);
    expect(pipelineStatus(pipeline, done, at).remove).toBe(false);
    const failing = progressOf({ anyFailed: true, anyStarted: true, anyPending: false });
    expect(pipelineStatus(deleting, failing, at).remove).toBe(false);
    expect(pipelineStatus(deleting, progressOf({ anyStarted: true }), at).remove).toBe(false);
  });

  test("pipeline status: changed only when status, ended or finished moves", () => {
    const running = { ...pipeline, status: "active" as const };
    expect(pipelineStatus(running, progressOf({ anyStarted: true }), at).changed).toBe(false);
    const settled = { ...pipeline, status: "failed" as const, finished: at };
    const same = progressOf({ anyFailed: true, anyStarted: true, anyPending: false });
    expect(pipelineStatus(settled, same, at).changed).toBe(false);
    expect(pipelineStatus(settled, same, at + 1).changed).toBe(true);
  });
});

describe("purity", () => {
  test("a rule never mutates the errand it is given", () => {
    const options: Options = {
      ttl: 1,
      heartbeat: 5,
      retries: 2,
      backoff: { type: "exponential", delay: SECOND },
    };
    const at = NOW + HOUR;
    for (const status of STATUSES) {
      const errand = deepFreeze(inStatus(status, options));
      const snapshot = structuredClone(errand);
      const rules: Array<() => unknown> = [
        () => claimable(errand),
        () => claim(errand, at),
        () => release(errand, errand.attempts, at),
        () => deadlines(errand, at),
        () => requireAttempt(errand, errand.attempts),
        () => requireActive(errand, "act"),
        () => progress(errand, 50, at, errand.attempts),
        () => log(errand, { severity: "INFO", message: "hi" }, at),
        () => heartbeat(errand, at),
        () => complete(errand, { done: true }, at),
        () => fail(errand, "boom", at),
        () => backoffMs(errand.options, errand.attempts),
        () => expiry(errand, at),
        () => expire(errand, "TTL Expired", at),
        () => retry(errand, at),
        ...STATUSES.map((to) => () => setStatus(errand, to, at)),
        () => isDue(errand, at),
        () => promote(errand),
        () => unblock(errand, at),
      ];
      for (const rule of rules) {
        try {
          rule();
        } catch (error) {
          // A refusal is fine; writing to the frozen errand (a TypeError) is not.
          if (!(error instanceof DomainError)) throw error;
        }
      }
      expect(errand).toStrictEqual(snapshot);
    }
    const pipeline = deepFreeze<PipelineRecord>({
      id: "p1",
      name: "report",
      deleteOnCompleted: true,
      status: "active",
      started: NOW,
      ended: null,
      finished: null,
    });
    const progressDone = deepFreeze<PipelineProgress>({
      anyFailed: false,
      anyUnfinished: false,
      anyStarted: true,
      anyPending: false,
    });
    const next = pipelineStatus(pipeline, progressDone, at);
    expect(next.pipeline).not.toBe(pipeline);
    expect(pipeline.status).toBe("active");
    const spec = deepFreeze({ name: "n", type: "t", options: { ttl: 0, retries: 1 }, data: {} });
    expect(newErrand(spec, { id: "x", now: NOW }).options).toStrictEqual({ retries: 1 });
    expect(spec.options).toStrictEqual({ ttl: 0, retries: 1 });
  });
});

describe("invariants under random sequences of rules", () => {
  /** mulberry32: a small seeded PRNG, so a failing sequence can be replayed. */
  function prng(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  type Random = () => number;
  const int = (random: Random, max: number) => Math.floor(random() * (max + 1));
  const pick = <T>(random: Random, items: readonly T[]): T =>
    items[Math.floor(random() * items.length)] as T;

  function randomErrand(random: Random, now: number): ErrandRecord {
    const options: Options = {
      ttl: pick(random, [0, 1, 3]),
      heartbeat: pick(random, [0, 5, 30]),
      retries: pick(random, [0, 1, 3]),
    };
    const backoff = pick(random, ["none", "fixed", "exponential"] as const);
    if (backoff !== "none") options.backoff = { type: backoff, delay: pick(random, [1, 10_000]) };
    const start = pick(random, ["now", "runAt", "delay"] as const);
    if (start === "runAt") options.runAt = now + int(random, 5) * MINUTE - 2 * MINUTE;
    if (start === "delay") options.delay = int(random, 3) * MINUTE;
    const blocked = random() < 0.3;
    return newErrand(
      { name: "job", type: "work", options },
      blocked ? { id: "e1", now, pipeline: "p1", blocked } : { id: "e1", now },
    );
  }

  /** What a worker sends as `attempt`: nothing, the current one, or one that went stale. */
  function attemptOf(random: Random, errand: ErrandRecord): number | undefined {
    const draw = random();
    if (draw < 0.5) return undefined;
    return draw < 0.8 ? errand.attempts : errand.attempts - 1;
  }

  /** Each rule as the service applies it; null where the service would not call it. */
  const rules: Record<string, (e: ErrandRecord, now: number, r: Random) => Transition | null> = {
    claim: (e, now) => (claimable(e) ? claim(e, now) : null),
    release: (e, now, r) => release(e, r() < 0.7 ? e.attempts : int(r, 3), now),
    progress: (e, now, r) => progress(e, int(r, 100), now, attemptOf(r, e)),
    log: (e, now, r) => log(e, { severity: "INFO", message: "step" }, now, attemptOf(r, e)),
    heartbeat: (e, now, r) => heartbeat(e, now, attemptOf(r, e)),
    complete: (e, now, r) => complete(e, r() < 0.5 ? undefined : { at: now }, now, attemptOf(r, e)),
    fail: (e, now, r) => fail(e, "boom", now, attemptOf(r, e)),
    expire: (e, now) => {
      const reason = expiry(e, now);
      return reason ? expire(e, reason, now) : null;
    },
    retry: (e, now) => retry(e, now),
    setStatus: (e, now, r) => setStatus(e, pick(r, STATUSES), now),
    promote: (e, now) => (isDue(e, now) ? promote(e) : null),
    unblock: (e, now) => (e.status === "blocked" ? unblock(e, now) : null),
  };

  function violations(errand: ErrandRecord): string[] {
    const found: string[] = [];
    const active = errand.status === "active";
    const final = errand.status === "completed" || errand.status === "failed";
    if (!active && (errand.ttlDeadline !== null || errand.heartbeatDeadline !== null)) {
      found.push("deadlines while not active");
    }
    if (active && (errand.options.ttl ?? 0) > 0 && errand.ttlDeadline === null) {
      found.push("active with a ttl but no TTL deadline");
    }
    if (active && (errand.options.heartbeat ?? 0) > 0 && errand.heartbeatDeadline === null) {
      found.push("active with a heartbeat but no heartbeat deadline");
    }
    if (active && errand.started === null) found.push("active but never started");
    if (errand.runAt !== null && errand.status !== "scheduled" && errand.status !== "blocked") {
      found.push("runAt while neither scheduled nor blocked");
    }
    if (errand.status === "scheduled" && errand.runAt === null) found.push("scheduled, no runAt");
    if ((errand.finished !== null) !== final) found.push("finished set but not final, or not set");
    if (!Number.isInteger(errand.attempts) || errand.attempts < 0) found.push("bad attempts");
    if (!Number.isInteger(errand.progress) || errand.progress < 0 || errand.progress > 100) {
      found.push("progress outside 0..100");
    }
    return found;
  }

  test("random sequences of rules keep the errand's invariants", () => {
    const applied = new Map<string, number>();
    const refused = new Map<string, number>();
    const seen = new Set<Status>();
    const problems: string[] = [];
    let steps = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const random = prng(seed);
      let now = NOW;
      let errand = randomErrand(random, now);
      problems.push(...violations(errand).map((v) => `seed ${seed}, created: ${v}`));
      for (let step = 0; step < 200; step++, steps++) {
        now += int(random, 40) * SECOND;
        const name = pick(random, Object.keys(rules));
        const rule = rules[name];
        if (!rule) throw new Error(`no rule ${name}`);
        let change: Transition | null;
        try {
          change = rule(errand, now, random);
        } catch (error) {
          if (!(error instanceof DomainError) || (error.status !== 400 && error.status !== 409)) {
            throw error;
          }
          refused.set(name, (refused.get(name) ?? 0) + 1);
          continue;
        }
        if (change === null) continue;
        applied.set(name, (applied.get(name) ?? 0) + 1);
        const where = `seed ${seed}, step ${step}, ${name} from ${errand.status}`;
        const { attempts } = errand;
        const delta = name === "claim" ? 1 : name === "release" ? -1 : 0;
        if (change.errand.attempts !== attempts + delta) problems.push(`${where}: attempts moved`);
        if (change.event !== null && !EVENT_NAMES.includes(change.event)) {
          problems.push(`${where}: unknown event ${change.event}`);
        }
        if (change.log !== null && change.log.timestamp !== now)
          problems.push(`${where}: log time`);
        errand = change.errand;
        seen.add(errand.status);
        problems.push(...violations(errand).map((v) => `${where}: ${v}`));
      }
    }
    expect(problems).toEqual([]);
    expect(steps).toBe(5000);
    // The sequences reached every rule and every status, and met refusals too.
    expect([...applied.keys()].sort()).toEqual(Object.keys(rules).sort());
    expect([...seen].sort()).toEqual([...STATUSES].sort());
    for (const name of ["progress", "complete", "fail", "retry", "setStatus"]) {
      expect(refused.get(name) ?? 0).toBeGreaterThan(0);
    }
  });
});
