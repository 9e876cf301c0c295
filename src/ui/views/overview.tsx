// Overview: every type with its counts and controls, totals, and the last hour as charts.

import { useEffect, useRef, useState } from "preact/hooks";
import { STATUSES } from "../../store/records.ts";
import type { TypeSummary } from "../../types/model.ts";
import { api } from "../api.ts";
import { duration, Problem, Section, useLiveData } from "../components.tsx";
import { href } from "../router.ts";

export interface MinuteCounts {
  minute: number;
  completed: number;
  failed: number;
  waiting: number | null;
}

export function Overview() {
  const types = useLiveData(
    () => api<{ results: TypeSummary[] }>("GET", "v1/types").then((a) => a.results),
    [],
  );
  const history = useLiveData(
    () =>
      api<{ results: MinuteCounts[] }>("GET", "v1/types/history?minutes=60").then((a) => a.results),
    [],
    (event) => event.event === "completed" || event.event === "failed",
    2000,
  );
  const rows = types.data ?? [];
  const totals: Record<string, number> = {};
  for (const row of rows) {
    for (const [status, n] of Object.entries(row.counts))
      totals[status] = (totals[status] ?? 0) + n;
  }
  return (
    <>
      <h1>Overview</h1>
      <nav class="totals" aria-label="Totals">
        {STATUSES.map((status) => (
          <a
            class={`total status-${status}`}
            href={href("errands", undefined, { status })}
            key={status}
          >
            <span class="count" data-status={status}>
              {(totals[status] ?? 0).toLocaleString()}
            </span>
            <span>{status}</span>
          </a>
        ))}
      </nav>
      <Section title="Types">
        <Problem error={types.error} />
        {rows.length === 0 && types.data ? (
          <p class="muted">No errands yet.</p>
        ) : (
          <div class="scroll">
            <table class="types">
              <thead>
                <tr>
                  <th scope="col">Type</th>
                  {STATUSES.map((status) => (
                    <th scope="col" class="num" key={status}>
                      {status}
                    </th>
                  ))}
                  <th scope="col">Oldest waiting</th>
                  <th scope="col">Controls</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <TypeRow row={row} key={row.type} onChange={types.reload} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <div class="charts">
        <Section title="Completed and failed per minute, last hour">
          <Problem error={history.error} />
          <ThroughputChart minutes={history.data ?? []} />
        </Section>
        <Section title="Waiting (queue depth), last hour">
          <DepthChart minutes={history.data ?? []} />
        </Section>
      </div>
    </>
  );
}

function TypeRow({ row, onChange }: { row: TypeSummary; onChange: () => void }) {
  const [limit, setLimit] = useState(row.concurrency === null ? "" : String(row.concurrency));
  // Being edited: the stored limit, reloaded as events come, must not overwrite the edit.
  const editing = useRef(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!editing.current) setLimit(row.concurrency === null ? "" : String(row.concurrency));
  }, [row.concurrency]);
  const set = async (controls: { paused?: boolean; concurrency?: number | null }) => {
    if (controls.concurrency !== undefined) editing.current = false;
    try {
      await api("PUT", `v1/types/${encodeURIComponent(row.type)}`, controls);
      setError(null);
      onChange();
    } catch (problem) {
      setError(problem);
    }
  };
  const limitId = `limit-${row.type}`;
  return (
    <tr data-type={row.type}>
      <th scope="row">
        <a href={href("errands", undefined, { type: row.type })}>{row.type}</a>
        {row.paused && <span class="tag">paused</span>}
        {row.rateLimit && (
          <span
            class="tag"
            title={`${row.claimsInWindow ?? 0} claims started in the current window`}
          >
            ≤ {row.rateLimit.max} per {duration(row.rateLimit.perMs)}
          </span>
        )}
      </th>
      {STATUSES.map((status) => (
        <td class="num" data-status={status} key={status}>
          {(row.counts[status] ?? 0).toLocaleString()}
        </td>
      ))}
      <td>
        {row.oldestWaitingMs === null ? (
          <span class="muted">—</span>
        ) : (
          duration(row.oldestWaitingMs)
        )}
      </td>
      <td class="controls">
        <button
          type="button"
          aria-label={`${row.paused ? "Resume" : "Pause"} ${row.type}`}
          onClick={() => set({ paused: !row.paused })}
        >
          {row.paused ? "Resume" : "Pause"}
        </button>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            set({ concurrency: limit.trim() === "" ? null : Number(limit) });
          }}
        >
          <label for={limitId}>Concurrency</label>
          <input
            id={limitId}
            type="number"
            min={1}
            inputMode="numeric"
            placeholder="no limit"
            value={limit}
            onInput={(e) => {
              editing.current = true;
              setLimit(e.currentTarget.value);
            }}
          />
          <button type="submit" aria-label={`Set the concurrency of ${row.type}`}>
            Set
          </button>
        </form>
        <Problem error={error} />
      </td>
    </tr>
  );
}

const CHART_W = 600;
const CHART_H = 160;

function ThroughputChart({ minutes }: { minutes: MinuteCounts[] }) {
  const peak = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
  const width = CHART_W / Math.max(minutes.length, 1);
  const completed = minutes.reduce((sum, m) => sum + m.completed, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
  return (
    <figure>
      <svg
        viewBox={`0 0 ${CHART_W} ${CHART_H}`}
        role="img"
        aria-label={`${completed} completed and ${failed} failed in the last hour; at most ${peak} in a minute`}
        class="chart"
      >
        {minutes.map((m, i) => {
          const hc = (m.completed / peak) * (CHART_H - 10);
          const hf = (m.failed / peak) * (CHART_H - 10);
          return (
            <g key={m.minute}>
              <title>{`${new Date(m.minute).toLocaleTimeString()}: ${m.completed} completed, ${m.failed} failed`}</title>
              <rect
                class="bar-completed"
                x={i * width + 1}
                y={CHART_H - hc}
                width={width - 2}
                height={hc}
              />
              <rect
                class="bar-failed"
                x={i * width + 1}
                y={CHART_H - hc - hf}
                width={width - 2}
                height={hf}
              />
            </g>
          );
        })}
        <line class="axis" x1={0} y1={CHART_H - 0.5} x2={CHART_W} y2={CHART_H - 0.5} />
      </svg>
      <TimeAxis minutes={minutes} />
      <figcaption>
        <span class="key key-completed">completed {completed.toLocaleString()}</span>{" "}
        <span class="key key-failed">failed {failed.toLocaleString()}</span>{" "}
        <span class="muted">peak {peak.toLocaleString()}/min</span>
      </figcaption>
    </figure>
  );
}

function DepthChart({ minutes }: { minutes: MinuteCounts[] }) {
  const sampled = minutes.filter((m) => m.waiting !== null);
  const peak = Math.max(1, ...sampled.map((m) => m.waiting ?? 0));
  const width = CHART_W / Math.max(minutes.length, 1);
  const now = sampled.at(-1)?.waiting ?? 0;
  return (
    <figure>
      <svg
        viewBox={`0 0 ${CHART_W} ${CHART_H}`}
        role="img"
        aria-label={`Waiting now ${now}; at most ${peak} in the last hour`}
        class="chart"
      >
        {minutes.map((m, i) => {
          // A minute without a sample (the server was down) is left blank, not drawn as 0.
          if (m.waiting === null) return null;
          const h = (m.waiting / peak) * (CHART_H - 10);
          return (
            <rect
              key={m.minute}
              class="bar-waiting"
              x={i * width + 1}
              y={CHART_H - h}
              width={width - 2}
              height={h}
            >
              <title>{`${new Date(m.minute).toLocaleTimeString()}: ${m.waiting} waiting`}</title>
            </rect>
          );
        })}
        <line class="axis" x1={0} y1={CHART_H - 0.5} x2={CHART_W} y2={CHART_H - 0.5} />
      </svg>
      <TimeAxis minutes={minutes} />
      <figcaption>
        <span class="key key-waiting">waiting {now.toLocaleString()}</span>{" "}
        <span class="muted">peak {peak.toLocaleString()}</span>
      </figcaption>
    </figure>
  );
}

/** Under a chart: how far back its left edge is, and that its right edge is now. */
function TimeAxis({ minutes }: { minutes: MinuteCounts[] }) {
  return (
    <div class="time-axis" aria-hidden="true">
      <span>{minutes.length} min ago</span>
      <span>now</span>
    </div>
  );
}
