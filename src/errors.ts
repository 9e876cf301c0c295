// The domain errors services throw; app.ts maps each to its status code and the error envelope.

export class DomainError extends Error {
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
