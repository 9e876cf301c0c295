// CORS as v1 answered it: any origin allowed by default, echoed with credentials; a list of
// origins narrows it. Preflights allow every method the API uses, DELETE included.

export const ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS, HEAD";
export const ALLOWED_HEADERS = "Content-Type, Authorization, Idempotency-Key, Last-Event-ID";

export class Cors {
  /** Lower-cased origins without a trailing slash; null allows any origin. */
  private readonly origins: Set<string> | null;

  constructor(origins: "*" | string[]) {
    this.origins = origins === "*" ? null : new Set(origins.map(normalizeOrigin));
  }

  allows(origin: string): boolean {
    return this.origins === null || this.origins.has(normalizeOrigin(origin));
  }

  /** Headers every answer carries for the request's Origin (none when it is not allowed). */
  headers(origin: string | null): Record<string, string> {
    // Vary on every answer: a cache must not serve one origin's answer to another.
    if (origin === null || !this.allows(origin)) return { vary: "Origin" };
    return {
      vary: "Origin",
      "access-control-allow-origin": origin,
      "access-control-allow-credentials": "true",
    };
  }

  /** The answer to an OPTIONS request: 204, with the allowed methods and headers. */
  preflight(origin: string | null): Response {
    const headers = this.headers(origin);
    if ("access-control-allow-origin" in headers) {
      headers["access-control-allow-methods"] = ALLOWED_METHODS;
      headers["access-control-allow-headers"] = ALLOWED_HEADERS;
      headers["access-control-max-age"] = "600";
    }
    return new Response(null, { status: 204, headers });
  }
}

function normalizeOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, "").toLowerCase();
}
