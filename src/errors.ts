// The domain errors services throw; app.ts maps each to its status code and the error envelope.

export class DomainError extends Error {
  /** When asking again may succeed, in ms: answered as `retryAfterMs` and `Retry-After`. */
  readonly retryAfterMs?: number;

  constructor(
    readonly status: 400 | 401 | 404 | 409 | 413 | 503,
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }
}

export class BadInput extends DomainError {
  constructor(message: string, detail: string) {
    super(400, message, detail);
  }
}

/** No valid bearer token where one is needed; answered with `WWW-Authenticate: Bearer`. */
export class Unauthorized extends DomainError {
  constructor() {
    super(401, "Unauthorized", "a valid Authorization: Bearer token is required");
  }
}

export class NotFound extends DomainError {
  constructor(message: string, detail: string) {
    super(404, message, detail);
  }
}

/** A Retry-After header's value: whole seconds, rounded up so a client never comes too soon. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.ceil(ms / 1000));
}

/** A claim a type's rate limit holds back: 404 No jobs, telling when the next claim may start. */
export class RateLimited extends NotFound {
  override readonly retryAfterMs: number;

  constructor(limit: { max: number; perMs: number }, retryAfterMs: number) {
    super(
      "No jobs",
      `rate limit ${limit.max} per ${limit.perMs} ms reached; next claim possible in ${retryAfterMs} ms`,
    );
    this.retryAfterMs = retryAfterMs;
  }
}

export class Conflict extends DomainError {
  constructor(message: string, detail: string) {
    super(409, message, detail);
  }
}

export class StorageUnavailable extends DomainError {
  constructor(detail: string) {
    super(503, "Storage unavailable", detail);
  }
}
