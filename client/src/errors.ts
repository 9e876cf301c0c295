// What a call throws: the server's refusal as a typed error carrying its status and envelope,
// or a NetworkError when no answer came.

import type { ErrorEnvelope } from "./types.ts";

/** The server answered with an error status; `envelope` is its `{"message","error"}` body. */
export class ErrandsError extends Error {
  override name = "ErrandsError";

  constructor(
    readonly status: number,
    readonly envelope: ErrorEnvelope,
    /** `METHOD path` of the call, for the message. */
    readonly call: string,
  ) {
    super(`${call}: ${status} ${envelope.message}${envelope.error ? `: ${envelope.error}` : ""}`);
  }
}

/** 400: bad input; the envelope's `error` names the field. */
export class BadRequestError extends ErrandsError {
  override name = "BadRequestError";
}
/** 401: a token is needed, or the one sent is wrong. */
export class UnauthorizedError extends ErrandsError {
  override name = "UnauthorizedError";
}
/** 404: no such errand or pipeline (or, from `process`, no jobs). */
export class NotFoundError extends ErrandsError {
  override name = "NotFoundError";
}
/** 409: not allowed in the errand's state, an attempt superseded, a key reused. */
export class ConflictError extends ErrandsError {
  override name = "ConflictError";
}
/** 413: the body is larger than the server takes. */
export class PayloadTooLargeError extends ErrandsError {
  override name = "PayloadTooLargeError";
}
/** 503: the server's storage cannot answer (or it holds its maximum of streams). */
export class UnavailableError extends ErrandsError {
  override name = "UnavailableError";
}

const BY_STATUS: Record<number, typeof ErrandsError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  503: UnavailableError,
};

/** The typed error of a status, ErrandsError itself for the others. */
export function errorFor(status: number, envelope: ErrorEnvelope, call: string): ErrandsError {
  return new (BY_STATUS[status] ?? ErrandsError)(status, envelope, call);
}

/** No answer came: the connection failed or dropped, or the call timed out. */
export class NetworkError extends Error {
  override name = "NetworkError";

  constructor(call: string, cause: unknown) {
    super(`${call}: no answer (${cause instanceof Error ? cause.message : String(cause)})`, {
      cause,
    });
  }
}
