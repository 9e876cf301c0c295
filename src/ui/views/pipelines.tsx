// Pipelines: the list by status, and one pipeline's dependency graph, each errand coloured by
// its status and linked to its page.

import { useEffect, useState } from "preact/hooks";
import type { Errand } from "../../errands/model.ts";
import type { Pipeline } from "../../pipelines/model.ts";
import { PIPELINE_STATUSES } from "../../store/records.ts";
import { api, query } from "../api.ts";
import { Problem, Section, StatusBadge, useCursor, useLiveData, When } from "../components.tsx";
import { layOut } from "../graph.ts";
import { live } from "../live.ts";
import { go, href, type Place } from "../router.ts";

const PAGE = 50;

export function Pipelines({ place }: { place: Place }) {
  const status = place.params.get("status") ?? "";
  const { after, pager, restart } = useCursor(place, (from) =>
    href("pipelines", undefined, { status, after: from }),
  );
  const list = useLiveData(
    () =>
      api<{ results: Pipeline[]; next: string | null }>(
        "GET",
        `v1/pipelines${query({ status, limit: PAGE, after })}`,
      ),
    [status, after],
    (event) => event.errand.pipeline !== undefined,
    500,
  );
  const navigate = (params: Record<string, string | undefined>) =>
    go(href("pipelines", undefined, { status, after, ...params }));
  return (
    <>
      <h1>Pipelines</h1>
      <div class="filters">
        <label for="pipeline-status">Status</label>
        <select
          id="pipeline-status"
          value={status}
          onChange={(e) => {
            restart();
            navigate({ status: e.currentTarget.value, after: undefined });
          }}
        >
          <option value="">any</option>
          {PIPELINE_STATUSES.map((s) => (
            <option value={s} key={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <Problem error={list.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.results ?? []).map((pipeline) => (
              <tr key={pipeline.id} data-id={pipeline.id}>
                <td>
                  <a href={href("pipeline", pipeline.id)}>{pipeline.name}</a>
                </td>
                <td>
                  <StatusBadge status={pipeline.status} />
                </td>
                <td>
                  <When ms={pipeline.startedMillis} />
                </td>
                <td>
                  <When ms={pipeline.endedMillis} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.data && list.data.results.length === 0 && <p class="muted">No pipelines.</p>}
      {pager(list.data?.next)}
    </>
  );
}

const NODE_W = 170;
const NODE_H = 44;
const GAP_X = 70;
const GAP_Y = 22;

export function PipelinePage({ id }: { id: string }) {
  const [pipeline, setPipeline] = useState<Pipeline | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = () =>
    api<{ results: Pipeline }>("GET", `v1/pipeline/${encodeURIComponent(id)}`).then((answer) => {
      setPipeline(answer.results);
      setError(null);
    }, setError);
  useEffect(() => {
    setPipeline(null);
    load();
    const off = live.subscribe((event) => {
      if (event.errand.pipeline !== id) return;
      // The errand's new status recolours its node; the pipeline's own status may follow.
      setPipeline(
        (current) =>
          current && {
            ...current,
            errands: current.errands?.map((e) =>
              e.id === event.errand.id ? { ...e, ...event.errand } : e,
            ),
          },
      );
      load();
    });
    const offResync = live.onResync(load);
    return () => {
      off();
      offResync();
    };
  }, [id]);

  if (!pipeline) return <Problem error={error} />;
  const errands = pipeline.errands ?? [];
  const edges = (pipeline.dependencies ?? []).map(
    (d) => [d.dependsOn, d.target] as [string, string],
  );
  const layout = layOut(
    errands.map((e) => e.name),
    edges,
  );
  const byName = new Map<string, Errand>(errands.map((e) => [e.name, e]));
  const x = (column: number) => 10 + column * (NODE_W + GAP_X);
  const y = (row: number) => 10 + row * (NODE_H + GAP_Y);
  const width = x(layout.columns) - GAP_X + 10;
  const height = y(layout.rows) - GAP_Y + 10;
  return (
    <>
      <h1>
        {pipeline.name} <StatusBadge status={pipeline.status} />
      </h1>
      <p>
        Started <When ms={pipeline.startedMillis} />
        {pipeline.endedMillis && (
          <>
            , ended <When ms={pipeline.endedMillis} />
          </>
        )}
        . <code>{pipeline.id}</code>
      </p>
      <Problem error={error} />
      <Section title="Dependency graph">
        <p id="graph-summary" class="muted">
          {errands.length} errands, {edges.length} dependencies
        </p>
        <div class="scroll">
          <svg
            class="graph"
            width={width}
            height={height}
            viewBox={`0 0 ${width} ${height}`}
            aria-labelledby="graph-summary"
          >
            <title>The dependency graph of {pipeline.name}</title>
            <defs>
              <marker
                id="arrow"
                viewBox="0 0 10 10"
                refX="9"
                refY="5"
                markerWidth="7"
                markerHeight="7"
                orient="auto"
              >
                <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
              </marker>
            </defs>
            {edges.map(([from, to]) => {
              const a = layout.nodes.get(from);
              const b = layout.nodes.get(to);
              if (!a || !b) return null;
              const x1 = x(a.column) + NODE_W;
              const y1 = y(a.row) + NODE_H / 2;
              const x2 = x(b.column);
              const y2 = y(b.row) + NODE_H / 2;
              const mid = (x1 + x2) / 2;
              return (
                <path
                  key={`${from}→${to}`}
                  class="edge"
                  data-from={from}
                  data-to={to}
                  d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
                  marker-end="url(#arrow)"
                />
              );
            })}
            {errands.map((errand) => {
              const node = layout.nodes.get(errand.name);
              if (!node) return null;
              const current = byName.get(errand.name) ?? errand;
              return (
                <a
                  key={errand.id}
                  href={href("errand", errand.id)}
                  class="node"
                  data-name={errand.name}
                  data-status={current.status}
                  aria-label={`${errand.name}: ${current.status}`}
                >
                  <rect
                    class={`node-box status-${current.status}`}
                    x={x(node.column)}
                    y={y(node.row)}
                    width={NODE_W}
                    height={NODE_H}
                    rx={6}
                  />
                  <text x={x(node.column) + 10} y={y(node.row) + 18} class="node-name">
                    {clip(errand.name, 22)}
                  </text>
                  <text x={x(node.column) + 10} y={y(node.row) + 35} class="node-status">
                    {current.status}
                    {current.status === "active" ? ` ${Math.round(current.progress)}%` : ""}
                  </text>
                </a>
              );
            })}
          </svg>
        </div>
      </Section>
    </>
  );
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
