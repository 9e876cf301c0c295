// Scheduled: errands waiting for their runAt or a backoff, soonest first.

import type { Errand } from "../../errands/model.ts";
import { api, query } from "../api.ts";
import { Problem, StatusBadge, useCursor, useLiveData, When } from "../components.tsx";
import { href, type Place } from "../router.ts";

const PAGE = 50;

export function Scheduled({ place }: { place: Place }) {
  const { after, pager } = useCursor(place, (from) =>
    href("scheduled", undefined, { after: from }),
  );
  const list = useLiveData(
    () =>
      api<{ results: Errand[]; next: string | null }>(
        "GET",
        `v1/errands/scheduled${query({ limit: PAGE, after })}`,
      ),
    [after],
    (event) =>
      event.errand.status === "scheduled" || event.event === "updated" || event.event === "deleted",
    500,
  );
  const rows = list.data?.results ?? [];
  return (
    <>
      <h1>Scheduled</h1>
      <Problem error={list.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Runs at</th>
              <th scope="col" class="num">
                Attempts
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((errand) => (
              <tr key={errand.id} data-id={errand.id}>
                <td>
                  <a href={href("errand", errand.id)}>{errand.name}</a>
                </td>
                <td>{errand.type}</td>
                <td>
                  <StatusBadge status={errand.status} />
                </td>
                <td>
                  <When ms={errand.runAt} />
                </td>
                <td class="num">{errand.attempts}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.data && rows.length === 0 && <p class="muted">Nothing is scheduled.</p>}
      {pager(list.data?.next)}
    </>
  );
}
