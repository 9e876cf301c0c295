// One errand: every field, its data and results as JSON, its logs as a timeline, and what an
// operator may do to it. Kept current from the event stream.

import { useEffect, useState } from "preact/hooks";
import type { Errand } from "../../errands/model.ts";
import { ApiError, api } from "../api.ts";
import { Json, Problem, Section, StatusBadge, useConfirm, When } from "../components.tsx";
import { live } from "../live.ts";
import { go, href } from "../router.ts";

export function ErrandPage({ id }: { id: string }) {
  const [errand, setErrand] = useState<Errand | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [gone, setGone] = useState(false);
  const [reason, setReason] = useState("");
  const [dialog, confirm] = useConfirm();

  const load = () =>
    api<{ results: Errand }>("GET", `v1/errand/${encodeURIComponent(id)}`).then(
      (answer) => {
        setErrand(answer.results);
        setError(null);
      },
      (problem) => {
        if (problem instanceof ApiError && problem.status === 404) setGone(true);
        else setError(problem);
      },
    );
  useEffect(() => {
    setErrand(null);
    setGone(false);
    load();
    const off = live.subscribe((event) => {
      if (event.errand.id !== id) return;
      if (event.event === "deleted") return setGone(true);
      setErrand((current) => {
        const logs = current?.logs ?? [];
        // The event's errand has no logs: the entry it appended, if any, joins those shown.
        return {
          ...event.errand,
          logs: event.log ? [...logs, event.log] : logs,
          dependencyResults: current?.dependencyResults,
        };
      });
    });
    const offResync = live.onResync(load);
    return () => {
      off();
      offResync();
    };
  }, [id]);

  if (gone) {
    return (
      <>
        <h1>Errand {id}</h1>
        <p class="muted">This errand does not exist (any more).</p>
        <a href={href("errands")}>All errands</a>
      </>
    );
  }
  if (!errand) return <Problem error={error} />;

  const act = async (label: string, method: string, path: string, body?: unknown) => {
    try {
      const answer = await api<{ results?: Errand }>(method, path, body);
      if (answer.results) setErrand(answer.results);
      setError(null);
    } catch (problem) {
      setError(problem);
      return;
    }
    if (label === "delete") go(href("errands"));
  };
  const base = `v1/errand/${encodeURIComponent(errand.id)}`;
  const finishable = errand.status !== "completed" && errand.status !== "failed";

  return (
    <>
      <h1>
        {errand.name} <StatusBadge status={errand.status} />
      </h1>
      <div class="bulk" role="toolbar" aria-label="Actions">
        <button
          type="button"
          disabled={errand.status === "inactive" || errand.status === "blocked"}
          onClick={async () =>
            (await confirm(`Retry ${errand.name}?`, "Retry")) &&
            act("retry", "POST", `${base}/retry`)
          }
        >
          Retry
        </button>
        <button
          type="button"
          disabled={!finishable}
          onClick={async () =>
            (await confirm(`Mark ${errand.name} completed, as an operator?`, "Complete")) &&
            act("complete", "PUT", `${base}/completed`, { results: { completedBy: "operator" } })
          }
        >
          Complete
        </button>
        <form
          class="inline"
          onSubmit={async (e) => {
            e.preventDefault();
            if (await confirm(`Fail ${errand.name}?`, "Fail")) {
              act("fail", "PUT", `${base}/failed`, {
                reason: reason.trim() || "Failed by an operator",
              });
            }
          }}
        >
          <label for="fail-reason">Reason</label>
          <input
            id="fail-reason"
            value={reason}
            placeholder="Failed by an operator"
            onInput={(e) => setReason(e.currentTarget.value)}
          />
          <button type="submit" disabled={!finishable}>
            Fail
          </button>
        </form>
        <span class="spacer" />
        <button
          type="button"
          class="danger"
          disabled={!!errand.pipeline}
          title={errand.pipeline ? "Errands of a pipeline go with their pipeline" : undefined}
          onClick={async () =>
            (await confirm(`Delete ${errand.name}? This cannot be undone.`, "Delete")) &&
            act("delete", "DELETE", base)
          }
        >
          Delete
        </button>
      </div>
      <Problem error={error} />
      <div class="columns">
        <Section title="Fields">
          <dl class="fields">
            <dt>Id</dt>
            <dd>
              <code>{errand.id}</code>
            </dd>
            <dt>Type</dt>
            <dd>
              <a href={href("errands", undefined, { type: errand.type })}>{errand.type}</a>
            </dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={errand.status} />
            </dd>
            <dt>Progress</dt>
            <dd>
              <progress max={100} value={errand.progress} aria-label="Progress" />{" "}
              {Math.round(errand.progress)}%
            </dd>
            <dt>Attempts</dt>
            <dd>
              {errand.attempts}
              {errand.options.retries !== undefined &&
                ` (retries allowed: ${errand.options.retries})`}
            </dd>
            <dt>Priority</dt>
            <dd>{errand.options.priority ?? 0}</dd>
            {errand.pipeline && (
              <>
                <dt>Pipeline</dt>
                <dd>
                  <a href={href("pipeline", errand.pipeline)}>{errand.pipeline}</a>
                </dd>
              </>
            )}
            <dt>Created</dt>
            <dd>
              <When ms={errand.created} />
            </dd>
            <dt>Started</dt>
            <dd>
              <When ms={errand.started} />
            </dd>
            <dt>Ended</dt>
            <dd>
              <When ms={errand.completed ?? errand.failed} />
            </dd>
            <dt>Runs at</dt>
            <dd>
              <When ms={errand.runAt} />
            </dd>
            <dt>TTL deadline</dt>
            <dd>
              <When ms={errand.ttlDeadline} />
              {errand.options.ttl ? (
                <span class="muted"> (ttl {errand.options.ttl} min)</span>
              ) : null}
            </dd>
            <dt>Heartbeat deadline</dt>
            <dd>
              <When ms={errand.heartbeatDeadline} />
              {errand.options.heartbeat ? (
                <span class="muted"> (every {errand.options.heartbeat}s)</span>
              ) : null}
            </dd>
          </dl>
        </Section>
        <Section title="Logs">
          {errand.logs?.length ? (
            <ol class="timeline">
              {errand.logs.map((log, i) => (
                <li key={i} class={`severity-${log.severity}`}>
                  <span class="severity">{log.severity}</span> <When ms={log.timestamp} />
                  <pre>{log.message}</pre>
                </li>
              ))}
            </ol>
          ) : (
            <p class="muted">No logs.</p>
          )}
        </Section>
      </div>
      <div class="columns">
        <Section title="Data">
          <Json value={errand.data} label="Data" />
        </Section>
        <Section title="Results">
          <Json value={errand.results} label="Results" />
        </Section>
        {errand.dependencyResults && (
          <Section title="Dependency results">
            <Json value={errand.dependencyResults} label="Dependency results" />
          </Section>
        )}
        <Section title="Options">
          <Json value={errand.options} label="Options" />
        </Section>
      </div>
      {dialog}
    </>
  );
}
