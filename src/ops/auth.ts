// Bearer tokens (ERRANDS_TOKEN): which requests need one, and a constant-time check of it.

import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Routes that also read ?token=, for a browser that cannot set headers there: the event stream
 * (EventSource) and Swagger UI's page, its files and its document (a page's links).
 */
const TOKEN_IN_QUERY = new Set(["/v1/errands/notifications", "/swagger", "/swagger/json"]);
const TOKEN_IN_QUERY_PREFIX = "/swagger/assets/";

/** Open to all: the health check. */
export const HEALTH_PATH = "/health";
/** Open to all: the dashboard's page and its files, code without data (src/ui/routes.ts). */
const DASHBOARD_PAGE = "/";
const DASHBOARD_ASSETS = "/ui/assets/";
const METRICS_PATH = "/metrics";

export class Auth {
  /** SHA-256 of each token: equal-length buffers for timingSafeEqual, whatever the lengths. */
  private readonly digests: Buffer[];

  constructor(
    tokens: string[],
    private readonly metricsPublic: boolean,
  ) {
    this.digests = tokens.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * Whether a request needs a token at all. `route` is the template of the route the router
   * matched (`/v1/errand/:id`), or the request's path before routing: both read the same way.
   */
  guards(method: string, route: string): boolean {
    if (!this.enabled || method === "OPTIONS") return false;
    const at = withoutTrailingSlash(route);
    if (at === HEALTH_PATH) return false;
    if ((method === "GET" || method === "HEAD") && isDashboardCode(route)) return false;
    if (at === METRICS_PATH) return !this.metricsPublic;
    return true;
  }

  /** Whether the request carries one of the tokens, in its Authorization header or, where a
   *  browser cannot set one, in ?token=. */
  admits(request: Request, route: string): boolean {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
    // The query string is read only where it may hold the token.
    const inQuery =
      bearer === undefined && this.takesQueryToken(route)
        ? new URLSearchParams(requestTarget(request.url)?.search ?? "").get("token")
        : null;
    const token = bearer ?? inQuery;
    if (!token) return false;
    const candidate = digest(token);
    let match = false;
    // Every token is compared, so the time taken does not tell which one matched.
    for (const known of this.digests) match = timingSafeEqual(candidate, known) || match;
    return match;
  }

  /** Whether the route also reads the token from ?token=, where a browser sets no header. */
  takesQueryToken(route: string): boolean {
    const at = withoutTrailingSlash(route);
    return TOKEN_IN_QUERY.has(at) || at.startsWith(TOKEN_IN_QUERY_PREFIX);
  }
}

/** The dashboard's page, exactly `/`, or one of its files: `/ui/assets/<name>`, one segment. */
function isDashboardCode(route: string): boolean {
  if (route === DASHBOARD_PAGE) return true;
  if (!route.startsWith(DASHBOARD_ASSETS)) return false;
  const name = route.slice(DASHBOARD_ASSETS.length);
  return name.length > 0 && !name.includes("/");
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

function withoutTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

/**
 * The path and query string of a request URL, read as the router reads them; null when the
 * URL is not absolute. Bun hands a request with an empty or malformed Host (`a/b`, `a b`, a
 * port out of range) over with a bare path for its URL, which would be read wrong here and by
 * the router alike, so such a request is refused before anything else looks at it.
 */
export function requestTarget(url: string): { path: string; search: string } | null {
  if (!(url.startsWith("http://") || url.startsWith("https://")) || !URL.canParse(url)) {
    return null;
  }
  const host = url.indexOf("//") + 2;
  const start = url.indexOf("/", host);
  if (start === host) return null; // no host at all: "http:///path"
  if (start < 0) return { path: "/", search: "" };
  const q = url.indexOf("?", start);
  return q < 0
    ? { path: url.slice(start), search: "" }
    : { path: url.slice(start, q), search: url.slice(q + 1) };
}
