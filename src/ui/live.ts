// The event stream, shared by every view: one EventSource, resumed after a drop from the last
// event it delivered, so no view misses a change.

import type { Errand, Log } from "../errands/model.ts";
import type { EventName } from "../store/records.ts";
import { query, session } from "./api.ts";

export interface ErrandEvent {
  /** The event's id in the log. */
  id: number;
  event: EventName;
  /** The errand after the change, without its logs. */
  errand: Errand;
  /** The log entry the change appended, if any. */
  log?: Log;
}

export type LiveState = "connecting" | "live" | "reconnecting";

/** How long to wait before reopening a dropped stream. */
const RETRY_MS = 1000;

export class Live {
  private source: EventSource | null = null;
  private lastId: string | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners = new Set<(event: ErrandEvent) => void>();
  private readonly resyncs = new Set<() => void>();
  private readonly watchers = new Set<(state: LiveState) => void>();
  state: LiveState = "connecting";

  start(): void {
    this.stop();
    this.open();
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.source?.close();
    this.source = null;
  }

  /** Hears every event, in order. */
  subscribe(listener: (event: ErrandEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Told when events may have been missed (pruned before a resume, or the log was reset):
   *  a view reloads what it shows. */
  onResync(listener: () => void): () => void {
    this.resyncs.add(listener);
    return () => this.resyncs.delete(listener);
  }

  watch(listener: (state: LiveState) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  private setState(state: LiveState): void {
    this.state = state;
    for (const watcher of this.watchers) watcher(state);
  }

  private open(): void {
    // EventSource cannot send a header: the token and the resume point go in the query.
    const url = `v1/errands/notifications${query({ token: session.token, lastEventId: this.lastId })}`;
    const source = new EventSource(url);
    this.source = source;
    const reopened = this.state === "reconnecting";
    source.onopen = () => {
      this.setState("live");
      // Dropped before any event came: there is no point to resume from.
      if (reopened && this.lastId === null) for (const listener of this.resyncs) listener();
    };
    source.onmessage = (message: MessageEvent<string>) => {
      this.lastId = message.lastEventId || this.lastId;
      const data = JSON.parse(message.data) as Omit<ErrandEvent, "id">;
      const event = { ...data, id: Number(message.lastEventId) };
      for (const listener of this.listeners) listener(event);
    };
    const resync = (message: MessageEvent<string>) => {
      if (message.lastEventId) this.lastId = message.lastEventId;
      for (const listener of this.resyncs) listener();
    };
    source.addEventListener("missed", resync);
    source.addEventListener("reset", resync);
    // Reopened by hand, not by the browser: its own retry would resume from the id in the URL
    // it was first given, not from the last event delivered.
    source.onerror = () => {
      source.close();
      if (this.source !== source) return;
      this.setState("reconnecting");
      this.retry = setTimeout(() => this.open(), RETRY_MS);
    };
  }
}

export const live = new Live();
