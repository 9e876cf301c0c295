// The typed client and worker of the Errands job queue: every route, the event stream as an
// async iterator, and a worker that claims, heartbeats and reports for you.

export {
  type AttemptOption,
  type ClientOptions,
  type CreateOptions,
  ErrandsClient,
  type Fetch,
  type Paging,
} from "./client.ts";
export {
  BadRequestError,
  ConflictError,
  ErrandsError,
  NetworkError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnavailableError,
} from "./errors.ts";
export type { EventsOptions } from "./events.ts";
export type * from "./types.ts";
export { type ErrandContext, type Handler, Worker, type WorkerOptions } from "./worker.ts";
