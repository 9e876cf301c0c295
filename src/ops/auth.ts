// Bearer tokens (ERRANDS_TOKEN): which requests need one, and a constant-time check of it.

import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Routes that also read ?token=, for a browser that cannot set headers there: the event stream
 * (EventSource) and Swagger UI's page, its files and its document (a page's links).
 */
const TOKEN_IN_QUERY = new Set([
  "/v1/errands/notifications",
  "/v1/errands/notifications/",
  "/swagger",
  "/swagger/",
  "/swagger/json",
  "/swagger/json/",
]);
const TOKEN_IN_QUERY_PREFIX = "/swagger/assets/";

/** Open to all: the health check. */
const OPEN = new Set(["/health", "/health/"]);
const METRICS = new Set(["/metrics", "/metrics/"]);

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

  /** Whether a request for `path` needs a token at all. */
  guards(method: string, path: string): boolean {
    if (!this.enabled || method === "OPTIONS") return false;
    if (OPEN.has(path)) return false;
    if (METRICS.has(path)) return !this.metricsPublic;
    return true;
  }

  /** Whether the request carries one of the tokens, in its Authorization header or, where a
   *  browser cannot set one, in ?token=. */
  admits(request: Request, path: string, search: string): boolean {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
    const inQuery =
      TOKEN_IN_QUERY.has(path) || path.startsWith(TOKEN_IN_QUERY_PREFIX)
        ? new URLSearchParams(search).get("token")
        : null;
    const token = bearer ?? inQuery;
    if (!token) return false;
    const candidate = digest(token);
    let match = false;
    // Every token is compared, so the time taken does not tell which one matched.
    for (const known of this.digests) match = timingSafeEqual(candidate, known) || match;
    return match;
  }
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** The path and the query string of a request URL, without building a URL object. */
export function splitUrl(url: string): { path: string; search: string } {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return { path: "/", search: "" };
  const q = url.indexOf("?", start);
  return q < 0
    ? { path: url.slice(start), search: "" }
    : { path: url.slice(start, q), search: url.slice(q + 1) };
}
