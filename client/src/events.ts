// The event stream (GET /v1/errands/notifications) as an async iterator: Server-Sent Events read
// by hand from the fetch body, so it runs wherever fetch does, and reopened after a drop from the
// last id received.

import { sleep } from "./backoff.ts";
import type { ErrandsClient } from "./client.ts";
import { ErrandsError, NetworkError } from "./errors.ts";
import type { EventName, MissedEvent, ResetEvent, StreamEvent } from "./types.ts";

export interface EventsOptions {
  /** Only these events (all when left out). */
  events?: EventName[];
  /** Resume after this event id: every event after it comes first, then live ones. */
  lastEventId?: number;
  /** Ends the iteration (as a `break` out of the loop does). */
  signal?: AbortSignal;
  /** Reopen a dropped stream after the last id received (true); false ends the iteration. */
  reconnect?: boolean;
}

/**
 * Beyond any id the server hands out (it takes 15 digits). A stream asked from here starts with
 * a `reset` frame naming the newest id, so even a drop before the first event loses nothing.
 */
const BEYOND = 999_999_999_999_999;
const PATH = "/v1/errands/notifications";

export async function* streamEvents(
  client: ErrandsClient,
  options: EventsOptions,
): AsyncGenerator<StreamEvent, void, undefined> {
  const reconnect = options.reconnect ?? true;
  let lastId = options.lastEventId;
  let failures = 0;
  while (!options.signal?.aborted) {
    const from = lastId ?? BEYOND;
    const controller = new AbortController();
    const stop = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", stop);
    try {
      const response = await client.send(
        {
          method: "GET",
          path: PATH,
          query: { events: options.events?.join(","), lastEventId: from },
          // Reopening is this loop's job.
          retry: false,
          signal: controller.signal,
          streaming: true,
        },
        async (answer) => answer,
      );
      for await (const frame of frames(response.body)) {
        failures = 0;
        if (frame.id !== undefined && /^\d+$/.test(frame.id)) lastId = Number(frame.id);
        const event = toEvent(frame);
        if (event === null) continue;
        // The answer to our own question from BEYOND: where the log stands, not news.
        if (event.event === "reset" && from === BEYOND && event.after === BEYOND) continue;
        yield event;
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      // A refusal (bad filter, no token) will not change by asking again; a 5xx may.
      if (error instanceof ErrandsError && error.status < 500) throw error;
      if (!reconnect) throw error instanceof ErrandsError ? error : new NetworkError(PATH, error);
    } finally {
      // Also on a `break` in the consumer's loop: the stream is closed.
      controller.abort();
      options.signal?.removeEventListener("abort", stop);
    }
    if (!reconnect) return;
    await sleep(client.backoff(failures++), options.signal);
  }
}

interface Frame {
  id?: string;
  event: string;
  data: string;
}

function toEvent(frame: Frame): StreamEvent | null {
  switch (frame.event) {
    case "message":
      return { ...JSON.parse(frame.data), id: Number(frame.id) };
    case "missed":
      return JSON.parse(frame.data) as MissedEvent;
    case "reset":
      return JSON.parse(frame.data) as ResetEvent;
    default:
      return null;
  }
}

/** The frames of an SSE body, as the HTML spec reads them (comments and `retry` skipped). */
export async function* frames(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Frame> {
  if (body === null) return;
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      text += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const end = lineEnd(text, start);
        if (end < 0) break;
        // A CR last in the text may be the first half of a CRLF: wait for the next chunk.
        if (text[end] === "\r" && end === text.length - 1 && !done) break;
        const line = text.slice(start, end);
        start = end + (text[end] === "\r" && text[end + 1] === "\n" ? 2 : 1);
        if (line === "") {
          if (data.length > 0) yield { id, event: event || "message", data: data.join("\n") };
          id = undefined;
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const raw = colon < 0 ? "" : line.slice(colon + 1);
        const fieldValue = raw.startsWith(" ") ? raw.slice(1) : raw;
        if (field === "data") data.push(fieldValue);
        else if (field === "event") event = fieldValue;
        else if (field === "id") id = fieldValue;
      }
      text = text.slice(start);
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

function lineEnd(text: string, from: number): number {
  const lf = text.indexOf("\n", from);
  const cr = text.indexOf("\r", from);
  if (cr < 0) return lf;
  if (lf < 0) return cr;
  return Math.min(cr, lf);
}
