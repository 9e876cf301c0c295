// Pieces every view uses: statuses, times, JSON, a confirmation dialog, loading that follows
// the event stream.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.ts";
import { type ErrandEvent, live } from "./live.ts";
import { go, type Place } from "./router.ts";

export function StatusBadge({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

/** A time as the operator reads it: local date and time, and how long ago or ahead. */
export function When({ ms }: { ms: number | undefined | null }) {
  if (!ms) return <span class="muted">—</span>;
  const date = new Date(ms);
  return (
    <time dateTime={date.toISOString()} title={date.toISOString()}>
      {date.toLocaleString()} <span class="muted">({ago(ms)})</span>
    </time>
  );
}

export function ago(ms: number, now = Date.now()): string {
  const seconds = Math.round((now - ms) / 1000);
  const text = duration(Math.abs(seconds) * 1000);
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/** 95 000 → "1m 35s"; 60 000 → "1m". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  return h % 24 ? `${Math.floor(h / 24)}d ${h % 24}h` : `${Math.floor(h / 24)}d`;
}

export function Json({ value, label }: { value: unknown; label: string }) {
  if (value === undefined) return <p class="muted">No {label.toLowerCase()}.</p>;
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function Problem({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? error.describe() : String(error);
  return (
    <p class="problem" role="alert">
      {text}
    </p>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/**
 * Loads with `load` now, again whenever an event `matters` (at most every `gapMs`), and after
 * the stream may have missed events. Answers the value, the error of the last load, and reload.
 */
export function useLiveData<T>(
  load: () => Promise<T>,
  deps: unknown[],
  matters: (event: ErrandEvent) => boolean = () => true,
  gapMs = 300,
): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const latest = useRef(0);
  const reload = useCallback(() => {
    const ticket = ++latest.current;
    load().then(
      (value) => {
        if (ticket !== latest.current) return;
        setData(value);
        setError(null);
      },
      (problem) => ticket === latest.current && setError(problem),
    );
  }, deps);
  useEffect(() => {
    reload();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const soon = () => {
      timer ??= setTimeout(() => {
        timer = null;
        reload();
      }, gapMs);
    };
    const offEvents = live.subscribe((event) => matters(event) && soon());
    const offResync = live.onResync(reload);
    return () => {
      offEvents();
      offResync();
      if (timer) clearTimeout(timer);
    };
  }, [reload]);
  return { data, error, reload };
}

/** A modal question; `ask` resolves true when the operator confirms. */
export function useConfirm(): [
  ComponentChildren,
  (question: string, action: string) => Promise<boolean>,
] {
  const [pending, setPending] = useState<{
    question: string;
    action: string;
    resolve: (yes: boolean) => void;
  } | null>(null);
  const ask = (question: string, action: string) =>
    new Promise<boolean>((resolve) => setPending({ question, action, resolve }));
  const answer = (yes: boolean) => {
    pending?.resolve(yes);
    setPending(null);
  };
  const dialog = pending && (
    <div class="backdrop">
      <div
        class="dialog"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby="confirm-question"
        onKeyDown={(e) => e.key === "Escape" && answer(false)}
      >
        <p id="confirm-question">{pending.question}</p>
        <div class="actions">
          <button type="button" onClick={() => answer(false)}>
            Cancel
          </button>
          <button
            type="button"
            class="danger"
            // biome-ignore lint/a11y/noAutofocus: the dialog's default action takes the focus
            autoFocus
            onClick={() => answer(true)}
          >
            {pending.action}
          </button>
        </div>
      </div>
    </div>
  );
  return [dialog, ask];
}

/**
 * Pages by cursor: the page's `after` lives in the URL (a deep link), the cursors of the pages
 * before it in memory. `link` makes the view's URL for another `after`.
 */
export function useCursor(place: Place, link: (after: string | undefined) => string) {
  const after = place.params.get("after") ?? "";
  const [previous, setPrevious] = useState<string[]>([]);
  const pager = (next: string | null | undefined) => (
    <Pager
      hasPrevious={after !== ""}
      next={next}
      onPrevious={() => {
        setPrevious(previous.slice(0, -1));
        go(link(previous.at(-1) || undefined));
      }}
      onNext={() => {
        setPrevious([...previous, after]);
        go(link(next ?? undefined));
      }}
    />
  );
  /** Back to the first page's history, for a new filter. */
  const restart = () => setPrevious([]);
  return { after, pager, restart };
}

function Pager({
  hasPrevious,
  next,
  onPrevious,
  onNext,
}: {
  hasPrevious: boolean;
  next: string | null | undefined;
  onPrevious: () => void;
  onNext: () => void;
}) {
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={!hasPrevious} onClick={onPrevious}>
        ← Previous
      </button>
      <button type="button" disabled={!next} onClick={onNext}>
        Next →
      </button>
    </nav>
  );
}
