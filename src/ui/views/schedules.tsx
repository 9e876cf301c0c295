// Schedules: every recurring errand with its timing, next and last runs; pause, resume or
// delete one. A tick creates an errand, whose event reloads the list.

import { useState } from "preact/hooks";
import type { Schedule } from "../../schedules/model.ts";
import { api, query } from "../api.ts";
import {
  duration,
  Problem,
  StatusBadge,
  useConfirm,
  useCursor,
  useLiveData,
  When,
} from "../components.tsx";
import { href, type Place } from "../router.ts";

const PAGE = 50;

export function Schedules({ place }: { place: Place }) {
  const { after, pager } = useCursor(place, (from) =>
    href("schedules", undefined, { after: from }),
  );
  const [error, setError] = useState<unknown>(null);
  const [dialog, confirm] = useConfirm();
  const list = useLiveData(
    () =>
      api<{ results: Schedule[]; next: string | null }>(
        "GET",
        `v1/schedules${query({ limit: PAGE, after })}`,
      ),
    [after],
    (event) => event.event === "created",
    500,
  );
  const path = (s: Schedule) => `v1/schedules/${encodeURIComponent(s.name)}`;
  const act = async (run: () => Promise<unknown>) => {
    try {
      await run();
      setError(null);
      list.reload();
    } catch (problem) {
      setError(problem);
    }
  };
  // A PUT replaces the whole schedule: pausing sends it back as it is, paused.
  const setPaused = (s: Schedule, paused: boolean) =>
    act(() =>
      api("PUT", path(s), {
        ...(s.cron === undefined ? { every: s.every } : { cron: s.cron, timezone: s.timezone }),
        errand: s.errand,
        overlap: s.overlap,
        paused,
      }),
    );
  const rows = list.data?.results ?? [];
  return (
    <>
      <h1>Schedules</h1>
      <Problem error={list.error ?? error} />
      <div class="scroll">
        <table class="schedules">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">When</th>
              <th scope="col">Errand</th>
              <th scope="col">Next run</th>
              <th scope="col">Last run</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.name} data-name={s.name}>
                <th scope="row">
                  {s.name}
                  {s.paused && <span class="tag">paused</span>}
                  {s.overlap === "skip" && <span class="tag">no overlap</span>}
                </th>
                <td>
                  {s.cron === undefined ? (
                    `every ${duration(s.every ?? 0)}`
                  ) : (
                    <>
                      <code>{s.cron}</code> <span class="muted">{s.timezone}</span>
                    </>
                  )}
                </td>
                <td>
                  {s.errand.name} <span class="muted">({s.errand.type})</span>
                </td>
                <td>{s.paused ? <StatusBadge status="paused" /> : <When ms={s.nextRunAt} />}</td>
                <td>
                  <When ms={s.lastRunAt} />{" "}
                  {s.lastErrandId && <a href={href("errand", s.lastErrandId)}>its errand</a>}
                </td>
                <td class="controls">
                  <button
                    type="button"
                    aria-label={`${s.paused ? "Resume" : "Pause"} schedule ${s.name}`}
                    onClick={() => setPaused(s, !s.paused)}
                  >
                    {s.paused ? "Resume" : "Pause"}
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete schedule ${s.name}`}
                    onClick={async () =>
                      (await confirm(
                        `Delete the schedule ${s.name}? Its errands stay.`,
                        "Delete",
                      )) && act(() => api("DELETE", path(s)))
                    }
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.data && rows.length === 0 && (
        <p class="muted">
          No schedules. Create one with <code>PUT /v1/schedules/:name</code>.
        </p>
      )}
      {pager(list.data?.next)}
      {dialog}
    </>
  );
}
