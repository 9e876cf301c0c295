// Live: the event feed as it comes, newest first, filtered by type and event.

import { useEffect, useState } from "preact/hooks";
import { EVENT_NAMES } from "../../store/records.ts";
import { StatusBadge, When } from "../components.tsx";
import { type ErrandEvent, live } from "../live.ts";
import { go, href, type Place } from "../router.ts";

/** Events kept on the page; older ones fall off. */
const KEPT = 500;

export function LiveFeed({ place }: { place: Place }) {
  const type = place.params.get("type") ?? "";
  const event = place.params.get("event") ?? "";
  const [events, setEvents] = useState<Array<ErrandEvent & { at: number }>>([]);
  const [paused, setPaused] = useState(false);

  useEffect(() => {
    if (paused) return;
    return live.subscribe((e) => {
      if (type && e.errand.type !== type) return;
      if (event && e.event !== event) return;
      setEvents((current) => [{ ...e, at: Date.now() }, ...current].slice(0, KEPT));
    });
  }, [type, event, paused]);

  return (
    <>
      <h1>Live</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label for="live-type">Type</label>
        <input
          id="live-type"
          value={type}
          placeholder="any"
          onChange={(e) =>
            go(href("live", undefined, { type: e.currentTarget.value.trim(), event }))
          }
        />
        <label for="live-event">Event</label>
        <select
          id="live-event"
          value={event}
          onChange={(e) => go(href("live", undefined, { type, event: e.currentTarget.value }))}
        >
          <option value="">any</option>
          {EVENT_NAMES.map((name) => (
            <option value={name} key={name}>
              {name}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>
          {paused ? "Resume feed" : "Pause feed"}
        </button>
        <button type="button" onClick={() => setEvents([])}>
          Clear
        </button>
      </form>
      <p class="muted" aria-live="polite">
        {events.length === 0 ? "Waiting for events…" : `${events.length} events (newest first)`}
      </p>
      <ol class="feed">
        {events.map((e) => (
          <li key={e.id} data-event={e.event}>
            <span class="event">{e.event}</span>{" "}
            <a href={href("errand", e.errand.id)}>{e.errand.name}</a>{" "}
            <span class="muted">{e.errand.type}</span> <StatusBadge status={e.errand.status} />{" "}
            {e.log && (
              <span class={`severity-${e.log.severity}`}>“{e.log.message.slice(0, 200)}”</span>
            )}{" "}
            <When ms={e.at} />
          </li>
        ))}
      </ol>
    </>
  );
}
