// GET /v1/errands/notifications: Server-Sent Events, resumable by Last-Event-ID.
//
// A stream first replays the stored events after the client's Last-Event-ID, then sends live
// ones; it subscribes before it reads the log, holds the live events that arrive while it
// reads, and skips ids it already sent, so nothing falls between the two. A client that reads
// too slowly is cut off once its buffer passes a bound.

import { Elysia, t } from "elysia";
import { errorBody } from "../errands/model.ts";
import { BadInput, DomainError } from "../errors.ts";
import type { Reads } from "../store/driver.ts";
import { type ErrandEvent, EVENT_NAMES, type EventBus, type EventName } from "./bus.ts";
import { EVENT_MODELS } from "./model.ts";

export interface StreamOptions {
  keepAliveMs: number;
  maxStreams: number;
  /** Bytes a stream may hold for a client that is not reading before it is cut off. */
  maxBufferBytes: number;
  /** Told when a stream opens (+1) and closes (-1). */
  onClientCount?: (delta: 1 | -1) => void;
}

const REPLAY_PAGE = 500;
/** Live events held while a replay reads; past this many they are read back from the log. */
const HELD_MAX = 1000;
const encoder = new TextEncoder();
const STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
};

export function frame(id: number, payload: string): string {
  return `id: ${id}\nevent: message\ndata: ${payload}\n\n`;
}

/** The event names a `?events=` value asks for; null means all of them. */
export function parseEventFilter(value: string | undefined): Set<EventName> | null {
  if (value === undefined || value.trim() === "" || value.trim() === "*") return null;
  const names = value.split(",").map((n) => n.trim());
  const unknown = names.filter((n) => n !== "*" && !EVENT_NAMES.includes(n as EventName));
  if (unknown.length > 0) {
    throw new BadInput(
      "Invalid request",
      `query.events: unknown event ${unknown.join(", ")}; events are ${EVENT_NAMES.join(", ")}`,
    );
  }
  return names.includes("*") ? null : new Set(names as EventName[]);
}

export class EventStreams {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly reads: Reads,
    private readonly bus: EventBus,
    private readonly options: StreamOptions,
  ) {}

  get count(): number {
    return this.open.size;
  }

  /** Ends every open stream (shutdown). */
  closeAll(): void {
    for (const close of [...this.open]) close();
  }

  routes() {
    return new Elysia({ tags: ["events"] }).model(EVENT_MODELS).get(
      "/v1/errands/notifications",
      ({ query, headers, request }) => {
        const filter = parseEventFilter(query.events);
        const resumeFrom = parseLastEventId(query.lastEventId ?? headers["last-event-id"]);
        if (this.open.size >= this.options.maxStreams) {
          throw new DomainError(503, "Too many streams", "the server holds its maximum of streams");
        }
        // Elysia answers a HEAD by reading the GET's whole body to size it: a stream never ends.
        if (request.method === "HEAD") return new Response(null, { headers: STREAM_HEADERS });
        return this.stream(filter, resumeFrom, request.signal);
      },
      {
        query: t.Object({
          events: t.Optional(
            t.String({
              description: `Comma-separated event names (${EVENT_NAMES.join(", ")}); none or * for all; another name is 400`,
            }),
          ),
          lastEventId: t.Optional(
            t.String({ description: "Resume after this event id (a whole number, else 400)" }),
          ),
          token: t.Optional(t.String({ description: "Bearer token, for EventSource" })),
        }),
        headers: t.Object({
          "last-event-id": t.Optional(
            t.String({ description: "Resume after this event id (a whole number, else 400)" }),
          ),
        }),
        response: {
          400: errorBody(
            "An unknown event name in `events`, or an event id that is not a whole number",
          ),
          503: errorBody(
            "ERRANDS_MAX_STREAMS streams are already open (`Too many streams`), or the database cannot answer",
          ),
        },
        detail: {
          summary: "Watch errand events (Server-Sent Events)",
          description:
            'Frames: `id: <n>`, `event: message`, `data: {"event":…,"errand":…,"log":…}`: `errand` is the errand after the change without its `logs`; `log`, present when the change appended a log entry, is that entry (`severity`, `message`, `timestamp`). Reconnect with `Last-Event-ID` (or `?lastEventId=`) to receive the missed events first. When events after that id were already pruned, the stream starts with a frame `event: missed`; when that id is beyond the newest event (a database restored from a backup), with a frame `id: <newest id>`, `event: reset`, `data: {"event":"reset","after":<that id>,"newest":<newest id>}`, then goes on with the events after the newest. With ERRANDS_TOKEN set it needs a token, as a bearer or, since EventSource cannot set headers, as `?token=`.',
          // The stream is no JSON body: its 200 is described here, not by a schema.
          responses: {
            200: {
              description:
                "An endless text/event-stream. The `data` of an `event: message` frame is an `ErrandEvent`, of an `event: missed` frame a `MissedEvent`, of an `event: reset` frame a `ResetEvent` (components.schemas)",
              content: { "text/event-stream": { schema: { type: "string" } } },
            },
          },
        },
      },
    );
  }

  private stream(filter: Set<EventName> | null, resumeFrom: number | null, signal: AbortSignal) {
    const { keepAliveMs, maxBufferBytes, onClientCount } = this.options;
    let lastSent = resumeFrom ?? 0;
    // While replaying, live events are held: they are committed, so a later page of the
    // replay reads them, and those that arrive during the last read are sent from here.
    let replaying = resumeFrom !== null;
    let held: ErrandEvent[] = [];
    let overflowed = false;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let closed = false;

    const send = (text: string): void => {
      if (closed) return;
      try {
        controller.enqueue(encoder.encode(text));
      } catch {
        // The stream ended underneath: stop with it (its keep-alive would throw again).
        close();
        return;
      }
      // desiredSize falls below zero by the bytes the client has not taken yet.
      if ((controller.desiredSize ?? 0) < -maxBufferBytes) close(true);
    };
    /** Sends the event unless already sent or filtered out; says whether it sent it. */
    const deliver = (id: number, event: string, payload: string): boolean => {
      if (id <= lastSent) return false;
      lastSent = id;
      if (filter !== null && !filter.has(event as EventName)) return false;
      send(frame(id, payload));
      return true;
    };
    const unsubscribe = this.bus.subscribe((e: ErrandEvent) => {
      if (!replaying) deliver(e.id, e.event, e.payload);
      else if (held.length < HELD_MAX) held.push(e);
      else overflowed = true;
    });
    const keepAlive = setInterval(() => send(": keep-alive\n\n"), keepAliveMs);
    const close = (slow = false): void => {
      if (closed) return;
      closed = true;
      clearInterval(keepAlive);
      unsubscribe();
      this.open.delete(close);
      signal.removeEventListener("abort", onAbort);
      onClientCount?.(-1);
      try {
        if (slow) controller.error(new Error("client too slow"));
        else controller.close();
      } catch {
        // Already closed by the client.
      }
    };
    const onAbort = () => close();
    signal.addEventListener("abort", onAbort);
    this.open.add(close);
    onClientCount?.(1);

    const body = new ReadableStream<Uint8Array>(
      {
        start: async (c) => {
          controller = c;
          send("retry: 3000\n\n");
          if (resumeFrom === null) return;
          try {
            lastSent = await this.resumePoint(resumeFrom, send);
          } catch {
            // The log cannot be read (the database is away): the stream ends, and the client
            // comes back later with the same Last-Event-ID.
            close();
          }
        },
        // The replay goes a page per pull, so a long one follows the client's pace.
        pull: async () => {
          // Pages until something is sent: a pull that enqueues nothing is not called again.
          let sentSomething = false;
          while (replaying && !closed && !sentSomething) {
            held = [];
            overflowed = false;
            let rows: Awaited<ReturnType<Reads["eventsAfter"]>>;
            try {
              rows = await this.reads.eventsAfter(lastSent, REPLAY_PAGE);
            } catch {
              // As above: the stream ends where it got to, and the client resumes from there.
              close();
              return;
            }
            for (const row of rows)
              sentSomething = deliver(row.id, row.event, row.payload) || sentSomething;
            // Caught up, unless more came than were held: from here on, live events, after
            // those that came during the read (ids already sent are skipped).
            if (rows.length < REPLAY_PAGE && !overflowed) {
              replaying = false;
              for (const e of held)
                sentSomething = deliver(e.id, e.event, e.payload) || sentSomething;
              held = [];
            }
          }
        },
        cancel: () => close(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );
    return new Response(body, { headers: STREAM_HEADERS });
  }

  /**
   * Where a client resuming after id `from` goes on from. It is told, in an `event: missed`
   * frame, when events after its id were pruned; and in an `event: reset` frame when its id is
   * beyond the newest (the database was restored from an older backup, say), since it would
   * otherwise wait for ids that were never handed out: it goes on after the newest.
   */
  private async resumePoint(from: number, send: (text: string) => void): Promise<number> {
    const { oldest, newest } = await this.reads.eventBounds();
    if (from > newest) {
      // With the newest id as its own, a client that reconnects before the next event resumes there.
      const data = JSON.stringify({ event: "reset", after: from, newest });
      send(`id: ${newest}\nevent: reset\ndata: ${data}\n\n`);
      return newest;
    }
    const firstKept = oldest ?? newest + 1;
    if (from < newest && firstKept > from + 1) {
      const data = JSON.stringify({ event: "missed", after: from, resumedAt: firstKept });
      send(`event: missed\ndata: ${data}\n\n`);
    }
    return from;
  }
}

function parseLastEventId(value: string | undefined): number | null {
  if (value === undefined || value.trim() === "") return null;
  if (!/^\d{1,15}$/.test(value.trim())) {
    throw new BadInput("Invalid request", "Last-Event-ID must be an event id (a whole number)");
  }
  return Number(value.trim());
}
