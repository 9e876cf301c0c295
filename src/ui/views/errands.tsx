// Errands: a table filtered by status and type or searched by id or name, a page at a time,
// kept current from the event stream; retry or delete the rows selected or every match.

import { useEffect, useState } from "preact/hooks";
import type { Errand } from "../../errands/model.ts";
import { STATUSES } from "../../store/records.ts";
import type { TypeSummary } from "../../types/model.ts";
import { ApiError, api, query } from "../api.ts";
import { Problem, StatusBadge, useConfirm, useCursor, When } from "../components.tsx";
import { live } from "../live.ts";
import { go, href, type Place } from "../router.ts";

const PAGE = 50;

interface Page {
  results: Errand[];
  next: string | null;
}

interface BulkAnswer {
  count: number;
  skipped: number;
  next: string | null;
}

export function Errands({ place }: { place: Place }) {
  const status = place.params.get("status") ?? "";
  const type = place.params.get("type") ?? "";
  const name = place.params.get("name") ?? "";
  // Newest first unless the URL says otherwise: what an operator opening the view looks for.
  const order = place.params.get("order") === "oldest" ? "oldest" : "newest";
  const { after, pager, restart } = useCursor(place, (from) =>
    href("errands", undefined, { status, type, name, order: orderParam(order), after: from }),
  );
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [types, setTypes] = useState<string[]>([]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [search, setSearch] = useState(name);
  const [note, setNote] = useState("");
  const [dialog, confirm] = useConfirm();

  const matches = (errand: Errand) =>
    (!status || errand.status === status) &&
    (!type || errand.type === type) &&
    (!name || errand.name.startsWith(name));

  const load = () =>
    api<Page>("GET", `v1/errands${query({ status, type, name, order, limit: PAGE, after })}`).then(
      (answer) => {
        setPage(answer);
        setError(null);
      },
      setError,
    );
  useEffect(() => {
    setSelected(new Set());
    setSearch(name);
    load();
    api<{ results: TypeSummary[] }>("GET", "v1/types").then(
      (answer) => setTypes(answer.results.map((t) => t.type)),
      () => {},
    );
    // Each event changes the rows it concerns; a new errand joins the first page (newest
    // first) or the last (oldest first).
    const off = live.subscribe(({ event, errand }) => {
      setPage((current) => {
        if (!current) return current;
        const at = current.results.findIndex((row) => row.id === errand.id);
        if (event === "deleted") {
          return at < 0
            ? current
            : { ...current, results: current.results.filter((_, i) => i !== at) };
        }
        if (at >= 0) {
          const results = current.results.slice();
          results[at] = { ...errand };
          return { ...current, results };
        }
        if (event !== "created" || !matches(errand)) return current;
        if (order === "newest") {
          if (after !== "") return current;
          const results = [errand, ...current.results];
          if (results.length <= PAGE) return { ...current, results };
          const kept = results.slice(0, PAGE);
          return { results: kept, next: kept.at(-1)?.id ?? null };
        }
        if (current.next !== null) return current;
        if (current.results.length >= PAGE)
          return { ...current, next: current.results.at(-1)?.id ?? null };
        return { ...current, results: [...current.results, errand] };
      });
    });
    const offResync = live.onResync(load);
    return () => {
      off();
      offResync();
    };
  }, [status, type, name, order, after]);

  const navigate = (params: Record<string, string | undefined>) =>
    go(href("errands", undefined, { status, type, name, order: orderParam(order), ...params }));

  const submitSearch = async (e: Event) => {
    e.preventDefault();
    const text = search.trim();
    restart();
    if (text) {
      // An id opens that errand; anything else is a name prefix.
      try {
        await api("GET", `v1/errand/${encodeURIComponent(text)}`);
        go(href("errand", text));
        return;
      } catch (problem) {
        if (!(problem instanceof ApiError && problem.status === 404)) return setError(problem);
      }
    }
    go(href("errands", undefined, { name: text || undefined }));
  };

  const rows = page?.results ?? [];
  const allSelected = rows.length > 0 && rows.every((row) => selected.has(row.id));
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };

  const act = async (action: "retry" | "delete", scope: "selected" | "matching") => {
    const verb = action === "retry" ? "Retry" : "Delete";
    const what =
      scope === "selected"
        ? `${selected.size} selected errand${selected.size === 1 ? "" : "s"}`
        : `every errand matching ${describeFilter(status, type)}`;
    if (!(await confirm(`${verb} ${what}?`, verb))) return;
    try {
      let done = 0;
      let skipped = 0;
      if (scope === "selected") {
        const answer = await api<BulkAnswer>("POST", `v1/errands/${action}`, {
          ids: [...selected],
        });
        done = answer.count;
        skipped = answer.skipped;
      } else {
        const filter = { ...(status && { status }), ...(type && { type }) };
        let from: string | null = null;
        do {
          const body: { filter: typeof filter; after?: string } = { filter };
          if (from !== null) body.after = from;
          const answer: BulkAnswer = await api<BulkAnswer>("POST", `v1/errands/${action}`, body);
          done += answer.count;
          skipped += answer.skipped;
          from = answer.next;
        } while (from !== null);
      }
      setNote(
        `${verb}: ${done} done${skipped ? `, ${skipped} skipped (not allowed in their state)` : ""}.`,
      );
      setSelected(new Set());
      load();
    } catch (problem) {
      setError(problem);
    }
  };

  return (
    <>
      <h1>Errands</h1>
      <div class="filters">
        <form class="inline" onSubmit={submitSearch}>
          <label for="search">Search by id or name</label>
          <input
            id="search"
            type="search"
            value={search}
            placeholder="id, or the start of a name"
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
          <button type="submit">Search</button>
        </form>
        <label for="status-filter">Status</label>
        <select
          id="status-filter"
          value={status}
          disabled={!!name}
          onChange={(e) => {
            restart();
            navigate({ status: e.currentTarget.value, after: undefined });
          }}
        >
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option value={s} key={s}>
              {s}
            </option>
          ))}
        </select>
        <label for="type-filter">Type</label>
        <select
          id="type-filter"
          value={type}
          disabled={!!name}
          onChange={(e) => {
            restart();
            navigate({ type: e.currentTarget.value, after: undefined });
          }}
        >
          <option value="">any</option>
          {[...new Set([...types, ...(type ? [type] : [])])].map((t) => (
            <option value={t} key={t}>
              {t}
            </option>
          ))}
        </select>
        <label for="order">Order</label>
        <select
          id="order"
          value={order}
          onChange={(e) => {
            restart();
            navigate({ order: orderParam(e.currentTarget.value), after: undefined });
          }}
        >
          <option value="newest">newest first</option>
          <option value="oldest">oldest first</option>
        </select>
        {name && (
          <a class="button" href={href("errands")}>
            Clear search “{name}”
          </a>
        )}
      </div>
      <div class="bulk" role="toolbar" aria-label="Actions">
        <button
          type="button"
          disabled={selected.size === 0}
          onClick={() => act("retry", "selected")}
        >
          Retry selected
        </button>
        <button
          type="button"
          class="danger"
          disabled={selected.size === 0}
          onClick={() => act("delete", "selected")}
        >
          Delete selected
        </button>
        <span class="spacer" />
        <button
          type="button"
          disabled={!status && !type}
          title={!status && !type ? "Choose a status or a type first" : undefined}
          onClick={() => act("retry", "matching")}
        >
          Retry all matching
        </button>
        <button
          type="button"
          class="danger"
          disabled={!status && !type}
          title={!status && !type ? "Choose a status or a type first" : undefined}
          onClick={() => act("delete", "matching")}
        >
          Delete all matching
        </button>
      </div>
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      <Problem error={error} />
      <div class="scroll">
        <table class="errands">
          <thead>
            <tr>
              <th scope="col">
                <input
                  type="checkbox"
                  aria-label="Select every errand on this page"
                  checked={allSelected}
                  onChange={() =>
                    setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.id)))
                  }
                />
              </th>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">
                Progress
              </th>
              <th scope="col" class="num">
                Attempts
              </th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((errand) => (
              <tr key={errand.id} data-id={errand.id} data-status={errand.status}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${errand.name}`}
                    checked={selected.has(errand.id)}
                    onChange={() => toggle(errand.id)}
                  />
                </td>
                <td>
                  <a href={href("errand", errand.id)}>{errand.name}</a>
                </td>
                <td>{errand.type}</td>
                <td>
                  <StatusBadge status={errand.status} />
                </td>
                <td class="num">{Math.round(errand.progress)}%</td>
                <td class="num">{errand.attempts}</td>
                <td>
                  <When ms={errand.created} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {page && rows.length === 0 && <p class="muted">No errands match.</p>}
      {pager(page?.next)}
      {dialog}
    </>
  );
}

/** The order as the URL holds it: left out when it is the default, newest first. */
function orderParam(order: string): string | undefined {
  return order === "oldest" ? "oldest" : undefined;
}

function describeFilter(status: string, type: string): string {
  const parts = [status && `status ${status}`, type && `type ${type}`].filter(Boolean);
  return parts.join(" and ");
}
