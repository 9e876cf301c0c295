// The dashboard's entry: signs in when the server wants a token, then shows the view the URL
// names, with the event stream shared by all of them.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, onUnauthorized, session } from "./api.ts";
import { Problem } from "./components.tsx";
import { type LiveState, live } from "./live.ts";
import { usePlace } from "./router.ts";
import { ErrandPage } from "./views/errand.tsx";
import { Errands } from "./views/errands.tsx";
import { LiveFeed } from "./views/live.tsx";
import { Overview } from "./views/overview.tsx";
import { PipelinePage, Pipelines } from "./views/pipelines.tsx";
import { Scheduled } from "./views/scheduled.tsx";
import { Schedules } from "./views/schedules.tsx";

type Access = "checking" | "open" | "signed-in" | "signed-out";

const NAV = [
  ["", "Overview"],
  ["errands", "Errands"],
  ["pipelines", "Pipelines"],
  ["scheduled", "Scheduled"],
  ["schedules", "Schedules"],
  ["live", "Live"],
] as const;

/** Whether the server answers this tab: with no token at all, or with the one it holds. */
async function check(): Promise<Access> {
  try {
    await api("GET", "v1/types");
    return session.token ? "signed-in" : "open";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return "signed-out";
    throw error;
  }
}

function App() {
  const [access, setAccess] = useState<Access>("checking");
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    check().then(setAccess, setError);
    return onUnauthorized(() => setAccess("signed-out"));
  }, []);
  useEffect(() => {
    if (access === "open" || access === "signed-in") live.start();
    else live.stop();
  }, [access]);

  if (access === "checking")
    return error ? <Problem error={error} /> : <p class="muted">Loading…</p>;
  if (access === "signed-out") return <SignIn onSignedIn={() => setAccess("signed-in")} />;
  return (
    <Shell
      signedIn={access === "signed-in"}
      onSignOut={() => {
        session.signOut();
        setAccess("signed-out");
      }}
    />
  );
}

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    session.signIn(token.trim());
    try {
      if ((await check()) === "signed-out") {
        session.signOut();
        setError(new ApiError(401, "Unauthorized", "that token was refused"));
        return;
      }
      onSignedIn();
    } catch (problem) {
      session.signOut();
      setError(problem);
    }
  };
  return (
    <main class="signin">
      <h1>Errands</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <p>This server needs a token (ERRANDS_TOKEN).</p>
        <label for="token">Token</label>
        <input
          id="token"
          type="password"
          autoComplete="current-password"
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <button type="submit">Sign in</button>
        <Problem error={error} />
      </form>
    </main>
  );
}

function Shell({ signedIn, onSignOut }: { signedIn: boolean; onSignOut: () => void }) {
  const place = usePlace();
  const [state, setState] = useState<LiveState>(live.state);
  useEffect(() => live.watch(setState), []);
  const current =
    place.view === "errand" ? "errands" : place.view === "pipeline" ? "pipelines" : place.view;
  return (
    <>
      <header>
        <a class="brand" href="#/">
          Errands
        </a>
        <nav aria-label="Views">
          {NAV.map(([view, label]) => (
            <a key={view} href={`#/${view}`} aria-current={current === view ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class={`live-state live-${state}`} role="status" title="The event stream">
          {state}
        </span>
        {signedIn && (
          <button type="button" onClick={onSignOut}>
            Sign out
          </button>
        )}
      </header>
      <main>
        <View view={place.view} place={place} />
      </main>
    </>
  );
}

function View({ view, place }: { view: string; place: ReturnType<typeof usePlace> }) {
  switch (view) {
    case "errands":
      return <Errands place={place} />;
    case "errand":
      return <ErrandPage id={place.id} />;
    case "pipelines":
      return <Pipelines place={place} />;
    case "pipeline":
      return <PipelinePage id={place.id} />;
    case "scheduled":
      return <Scheduled place={place} />;
    case "schedules":
      return <Schedules place={place} />;
    case "live":
      return <LiveFeed place={place} />;
    case "":
      return <Overview />;
    default:
      return <p>No such view: {view}.</p>;
  }
}

const root = document.getElementById("app");
if (root) render(<App />, root);
