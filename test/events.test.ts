// Server-Sent Events: v1's frames, filters, every event from its route, resume by id,
// retention, slow clients, and a real EventSource client.

import { describe, expect, test } from "bun:test";
import net from "node:net";
import { EventSource } from "eventsource";
import { type Answer, appsPerTest, type TestApp } from "./harness.ts";
import { eventually, SseReader } from "./sse.ts";

const app = appsPerTest();

async function watch(a: TestApp, query = "", headers: Record<string, string> = {}) {
  const res = await a.app.handle(
    new Request(`http://localhost/v1/errands/notifications${query}`, { headers }),
  );
  return { res, sse: new SseReader(res) };
}

async function create(a: TestApp, type = "extract", name = "job") {
  return (await a.call("POST", "/v1/errands/", { name, type })).body.results;
}

describe("event stream", () => {
  test("answers with event-stream headers before any event, then a retry hint", async () => {
    const a = app();
    const { res, sse } = await watch(a);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    await sse.until(() => sse.text.startsWith("retry: 3000\n\n"));
    await sse.cancel();
  });

  test("sends v1's frame byte for byte: id, event: message, data with event and errand", async () => {
    const a = app();
    const { sse } = await watch(a);
    const errand = await create(a);
    await sse.until(() => sse.events.length === 1);
    const expected = `id: 1\nevent: message\ndata: ${JSON.stringify({ event: "created", errand })}\n\n`;
    expect(sse.text).toBe(`retry: 3000\n\n${expected}`);
    await sse.cancel();
  });

  test("emits every event type from the route that causes it", async () => {
    const a = app();
    const { sse } = await watch(a);
    const e = await create(a);
    await a.call("POST", "/v1/errands/process/extract");
    await a.call("PUT", `/v1/errand/${e.id}`, { progress: 10 });
    await a.call("POST", `/v1/errand/${e.id}/log`, { severity: "INFO", message: "hi" });
    await a.call("PUT", `/v1/errand/${e.id}/failed`, { reason: "boom" });
    await a.call("POST", `/v1/errand/${e.id}/retry`);
    await a.call("POST", "/v1/errands/process/extract");
    await a.call("PUT", `/v1/errand/${e.id}/completed`, { results: { n: 1 } });
    await a.call("DELETE", `/v1/errand/${e.id}`);
    const names = [
      "created",
      "processing",
      "updated",
      "updated",
      "failed",
      "retry",
      "processing",
      "completed",
      "deleted",
    ];
    await sse.until(() => sse.events.length === names.length);
    expect(sse.events.map((x) => x.event)).toEqual(names);
    expect(sse.events.map((x) => x.id)).toEqual(names.map((_, i) => i + 1));
    // Each carries the errand after the change.
    expect(sse.events[7]?.errand.status).toBe("completed");
    await sse.cancel();
  });

  test("TTL expiry emits failed", async () => {
    const a = app();
    await a.call("POST", "/v1/errands/", { name: "n", type: "t", options: { ttl: 1 } });
    await a.call("POST", "/v1/errands/process/t");
    const { sse } = await watch(a, "?events=failed");
    a.clock.advance(61_000);
    await a.sweep();
    await sse.until(() => sse.events.length === 1);
    expect(sse.events[0]?.errand.status).toBe("failed");
    await sse.cancel();
  });

  test("?events= filters to the named events; * and no parameter mean all", async () => {
    const a = app();
    const filtered = await watch(a, "?events=completed,failed");
    const star = await watch(a, "?events=*");
    const e = await create(a);
    await a.call("POST", "/v1/errands/process/extract");
    await a.call("PUT", `/v1/errand/${e.id}/completed`);
    await star.sse.until(() => star.sse.events.length === 3);
    await filtered.sse.until(() => filtered.sse.events.length === 1);
    expect(filtered.sse.events[0]?.event).toBe("completed");
    expect(filtered.sse.events[0]?.id).toBe(3);
    await filtered.sse.cancel();
    await star.sse.cancel();
  });

  test("an unknown event name is a 400", async () => {
    const a = app();
    const res = await a.app.handle(
      new Request("http://localhost/v1/errands/notifications?events=created,exploded"),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as Answer["body"]).error).toContain("exploded");
  });

  test("a HEAD is answered at once with the stream's headers, and opens no stream", async () => {
    const a = app();
    const head = (query: string) =>
      Promise.race([
        a.app.handle(
          new Request(`http://localhost/v1/errands/notifications${query}`, { method: "HEAD" }),
        ),
        Bun.sleep(5000).then(() => null),
      ]);
    const res = await head("");
    expect(res?.status).toBe(200);
    expect(res?.headers.get("content-type")).toStartWith("text/event-stream");
    expect(a.streams.count).toBe(0);
    expect((await head("?events=exploded"))?.status).toBe(400); // as a GET would be
  });

  test("events are published only after their change is committed", async () => {
    const a = app();
    const { sse } = await watch(a);
    const seen: Array<Promise<string | undefined>> = [];
    a.bus.subscribe((event) => {
      // Reads see only committed data: the errand must be there when its event is heard.
      const errand = event.errand as { id: string };
      seen.push(a.store.reads.errand(errand.id).then((row) => row?.id));
    });
    const e = await create(a);
    await a.eventsHeard();
    expect(await Promise.all(seen)).toEqual([e.id]);
    await sse.cancel();
  });
});

describe("event size", () => {
  test("a log event carries the new entry beside the errand, which comes without its logs", async () => {
    const a = app();
    const { sse } = await watch(a);
    const e = await create(a);
    await a.call("POST", "/v1/errands/process/extract");
    const logged = await a.call("POST", `/v1/errand/${e.id}/log`, {
      severity: "WARNING",
      message: "hi",
    });
    await sse.until(() => sse.events.length === 3);
    const data = JSON.parse(sse.frames.filter((f) => f.event === "message")[2]?.data ?? "{}");
    expect(Object.keys(data)).toEqual(["event", "errand", "log"]);
    expect(data.event).toBe("updated");
    expect(data.log).toEqual({ severity: "WARNING", message: "hi", timestamp: a.clock.now() });
    const { logs, ...withoutLogs } = logged.body.results;
    expect(logs.at(-1)).toEqual(data.log);
    expect(data.errand).toEqual(withoutLogs);
    // The claim's event carries the line it appended, and no logs either.
    expect(sse.events[1]).toMatchObject({ event: "processing", log: { message: "Started!" } });
    expect(sse.events[1]?.errand).not.toHaveProperty("logs");
    await sse.cancel();
  });

  test("1,000 log lines make events whose bytes grow linearly, not with the logs held", async () => {
    const a = app();
    const e = await create(a);
    await a.call("POST", "/v1/errands/process/extract");
    const line = "x".repeat(95);
    for (let i = 0; i < 1000; i++) {
      const message = `${String(i).padStart(4, "0")} ${line}`;
      await a.call("POST", `/v1/errand/${e.id}/log`, { severity: "INFO", message });
    }
    // Events 1 and 2 are the create and the claim; the 1,000 after them are the log lines.
    await a.eventsHeard();
    const rows = await a.store.reads.eventsAfter(2, 2000);
    expect(rows).toHaveLength(1000);
    const bytes = (part: typeof rows) =>
      part.reduce((sum, row) => sum + Buffer.byteLength(row.payload), 0);
    const first = bytes(rows.slice(0, 500));
    expect(bytes(rows.slice(500))).toBeLessThanOrEqual(first * 1.2);
    expect(JSON.parse(rows[999]?.payload ?? "{}").log.message).toBe(`0999 ${line}`);
  });
});

describe("resume", () => {
  test("Last-Event-ID replays exactly the missed events, in order, then live ones", async () => {
    const a = app();
    const first = await watch(a);
    for (let i = 0; i < 3; i++) await create(a, "t", `e${i}`);
    await first.sse.until(() => first.sse.events.length === 3);
    await first.sse.cancel();
    const lastSeen = first.sse.events[1]?.id ?? 0; // as if the third frame was lost
    for (let i = 3; i < 6; i++) await create(a, "t", `e${i}`);

    const again = await watch(a, "", { "last-event-id": String(lastSeen) });
    await again.sse.until(() => again.sse.events.length === 4);
    await create(a, "t", "live");
    await again.sse.until(() => again.sse.events.length === 5);
    expect(again.sse.events.map((x) => x.id)).toEqual([3, 4, 5, 6, 7]);
    await again.sse.cancel();
  });

  test("?lastEventId= resumes too, and the filter applies to the replay", async () => {
    const a = app();
    const e = await create(a);
    await a.call("POST", "/v1/errands/process/extract");
    await a.call("PUT", `/v1/errand/${e.id}/completed`);
    const { sse } = await watch(a, "?lastEventId=0&events=completed");
    await sse.until(() => sse.events.length === 1);
    expect(sse.events[0]).toMatchObject({ id: 3, event: "completed" });
    await sse.cancel();
  });

  test("a replay longer than one page arrives whole and without duplicates", async () => {
    const a = app();
    const specs = Array.from({ length: 1200 }, (_, i) => ({ name: `e${i}`, type: "bulk" }));
    for (const spec of specs) await a.call("POST", "/v1/errands/", spec);
    const { sse } = await watch(a, "", { "last-event-id": "0" });
    await sse.until(() => sse.events.length === 1200, 30_000);
    const ids = sse.events.map((x) => x.id);
    expect(new Set(ids).size).toBe(1200);
    expect(ids[0]).toBe(1);
    expect(ids[1199]).toBe(1200);
    await sse.cancel();
  });

  test("events older than the retention are pruned; a client resuming before them is told", async () => {
    const a = app({ env: { ERRANDS_EVENT_RETENTION: "1h" } });
    await create(a);
    await create(a);
    a.clock.advance(2 * 3_600_000);
    await create(a);
    await a.eventsHeard(); // each has its place in the log
    await a.sweep();
    const rows = (await a.store.reads.eventsAfter(0, 100)).map(({ id }) => ({ id }));
    expect(rows).toEqual([{ id: 3 }]);

    const { sse } = await watch(a, "", { "last-event-id": "1" });
    await sse.until(() => sse.events.length === 1);
    const missed = sse.frames.find((f) => f.event === "missed");
    expect(JSON.parse(missed?.data ?? "{}")).toEqual({ event: "missed", after: 1, resumedAt: 3 });
    expect(sse.events[0]?.id).toBe(3);
    await sse.cancel();
  });

  test("a large backlog of old events is pruned whole, a batch per write", async () => {
    const a = app({ env: { ERRANDS_EVENT_RETENTION: "1h" } });
    for (let i = 0; i < 11; i++) {
      const specs = Array.from({ length: 1000 }, (_, n) => ({ name: `e${n}`, type: "backlog" }));
      await a.call("POST", "/v1/errands/batch", { errands: specs });
    }
    a.clock.advance(2 * 3_600_000);
    const kept = await create(a, "backlog", "new");
    await a.eventsHeard(); // each has its place in the log
    const commits = a.commits();
    expect(await a.bus.prune(a.store, a.clock.now() - 3_600_000)).toBe(11_000);
    expect(a.commits() - commits).toBe(2);
    const left = await a.store.reads.eventsAfter(0, 100);
    expect(left.map((row) => JSON.parse(row.payload).errand.id)).toEqual([kept.id]);
  });

  test("event ids keep increasing across a restart, even after every stored event was pruned", async () => {
    const a = app({ env: { ERRANDS_EVENT_RETENTION: "1h" } });
    await create(a);
    await create(a);
    a.clock.advance(2 * 3_600_000);
    await a.eventsHeard(); // each has its place in the log
    await a.sweep();
    expect(await a.store.reads.eventsAfter(0, 100)).toEqual([]);
    a.close();

    const b = app({ dir: a.dir, clock: a.clock, env: { ERRANDS_EVENT_RETENTION: "1h" } });
    const { sse } = await watch(b, "", { "last-event-id": "2" });
    await create(b, "extract", "after restart");
    await sse.until(() => sse.events.length === 1);
    expect(sse.events[0]?.id).toBe(3);
    expect(sse.frames.some((f) => f.event === "missed")).toBe(false);
    await sse.cancel();
  });

  test("a client that is up to date is not told it missed anything", async () => {
    const a = app();
    await create(a);
    await a.eventsHeard(); // the client has heard event 1
    const { sse } = await watch(a, "", { "last-event-id": "1" });
    await create(a);
    await sse.until(() => sse.events.length === 1);
    expect(sse.frames.some((f) => f.event === "missed")).toBe(false);
    await sse.cancel();
  });

  test("a client resuming from an id beyond the newest is told to reset, then hears new events", async () => {
    const a = app();
    await create(a);
    await create(a);
    await a.eventsHeard(); // both are in the log
    const { sse } = await watch(a, "", { "last-event-id": "1000" });
    await sse.until(() => sse.frames.some((f) => f.event === "reset"));
    const reset = sse.frames.find((f) => f.event === "reset");
    expect(reset?.id).toBe("2");
    expect(JSON.parse(reset?.data ?? "{}")).toEqual({ event: "reset", after: 1000, newest: 2 });
    const later = await create(a, "extract", "after the reset");
    await sse.until(() => sse.events.length === 1);
    expect(sse.events[0]).toMatchObject({ id: 3, event: "created", errand: { id: later.id } });
    const kinds = sse.frames.map((f) => (f.retry !== undefined ? "retry" : f.event));
    expect(kinds).toEqual(["retry", "reset", "message"]);
    await sse.cancel();
  });

  test("a Last-Event-ID that is not a number is a 400", async () => {
    const a = app();
    const res = await a.app.handle(
      new Request("http://localhost/v1/errands/notifications", {
        headers: { "last-event-id": "abc" },
      }),
    );
    expect(res.status).toBe(400);
  });
});

describe("stream limits", () => {
  test("keep-alive comments flow on an idle stream", async () => {
    const a = app({ tune: { keepAliveMs: 20 } });
    const { sse } = await watch(a);
    await sse.until(() => sse.text.includes(": keep-alive\n\n"));
    await sse.cancel();
  });

  test("streams beyond ERRANDS_MAX_STREAMS get 503, and a closed stream frees its place", async () => {
    const a = app({ env: { ERRANDS_MAX_STREAMS: "2" } });
    const one = await watch(a);
    const two = await watch(a);
    const three = await a.app.handle(new Request("http://localhost/v1/errands/notifications"));
    expect(three.status).toBe(503);
    expect(((await three.json()) as Answer["body"]).message).toBeString();
    await one.sse.cancel();
    await eventually(() => a.streams.count === 1);
    const four = await watch(a);
    expect(four.res.status).toBe(200);
    await two.sse.cancel();
    await four.sse.cancel();
  });

  test("a client that stops reading is cut off while a reading one receives everything", async () => {
    const a = app({ tune: { sseMaxBufferBytes: 64 * 1024 } });
    a.app.listen({ hostname: "127.0.0.1", port: 0 });
    const port = a.app.server?.port;
    const slow = net.connect(port ?? 0, "127.0.0.1");
    await new Promise<void>((resolve) => slow.once("connect", () => resolve()));
    slow.write("GET /v1/errands/notifications HTTP/1.1\r\nHost: localhost\r\n\r\n");
    slow.pause();
    await eventually(() => a.streams.count === 1);

    const fast = await fetch(`http://127.0.0.1:${port}/v1/errands/notifications`);
    const reader = new SseReader(fast);
    await eventually(() => a.streams.count === 2);

    const big = "x".repeat(16 * 1024);
    let sent = 0;
    // Far more than the socket buffers and the stream's bound can hold for the slow client.
    while (a.streams.count === 2 && sent < 4000) {
      await a.call("POST", "/v1/errands/", { name: `n${sent}`, type: "t", data: { big } });
      sent++;
    }
    expect(a.streams.count).toBe(1);
    await reader.until(() => reader.events.length === sent, 30_000);
    slow.destroy();
    await reader.cancel();
  });

  test("the eventsource npm client receives v1 events", async () => {
    const a = app();
    a.app.listen({ hostname: "127.0.0.1", port: 0 });
    const es = new EventSource(`http://127.0.0.1:${a.app.server?.port}/v1/errands/notifications`);
    const received: Array<{ event: string; errand: { name: string } }> = [];
    es.onmessage = (message) => received.push(JSON.parse(message.data));
    await new Promise<void>((resolve) => {
      es.onopen = () => resolve();
    });
    await create(a, "t", "seen by eventsource");
    await eventually(() => received.length === 1);
    expect(received[0]?.event).toBe("created");
    expect(received[0]?.errand.name).toBe("seen by eventsource");
    es.close();
  });
});
