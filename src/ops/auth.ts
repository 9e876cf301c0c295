// Bearer tokens (ERRANDS_TOKEN): which requests need one, and a constant-time check of it.

import { createHash, timingSafeEqual } from "node:crypto";

/** The event stream also reads ?token=, since a browser's EventSource cannot set headers. */
const TOKEN_IN_QUERY = new Set(["/v1/errands/notifications", "/v1/errands/notifications/"]);

/** Open to all: the health check, and Swagger UI with its document so Authorize is reachable. */
const OPEN = new Set([
  "/health",
  "/health/",
  "/swagger",
  "/swagger/",
  "/swagger/json",
  "/swagger/json/",
]);
const OPEN_PREFIX = "/swagger/assets/";
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
    if (OPEN.has(path) || path.startsWith(OPEN_PREFIX)) return false;
    if (METRICS.has(path)) return !this.metricsPublic;
    return true;
  }

  /** Whether the request carries one of the tokens, in its Authorization header or, on the
   *  event stream, in ?token=. */
  admits(request: Request, path: string, search: string): boolean {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
    const inQuery = TOKEN_IN_QUERY.has(path) ? new URLSearchParams(search).get("token") : null;
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
