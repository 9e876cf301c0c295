// The shapes the client speaks, each picked out of the server's OpenAPI document (openapi.ts,
// generated from the routes' own schemas by scripts/client-types.ts): none is written by hand.

import type { components, operations } from "./openapi.ts";

type Json<T> = T extends { content: { "application/json": infer J } } ? J : never;
type Operation = keyof operations;

/** The JSON answer of an operation for a status (200 unless named). */
export type Answer<O extends Operation, S extends keyof operations[O]["responses"] = 200> = Json<
  operations[O]["responses"][S]
>;
/** The JSON body an operation takes. */
export type Body<O extends Operation> = Json<NonNullable<operations[O]["requestBody"]>>;
/** The query string an operation takes. */
export type Query<O extends Operation> = NonNullable<operations[O]["parameters"]["query"]>;

/** An errand, as every route answers it. */
export type Errand = Answer<"getV1ErrandById">["results"];
/** What a create takes: `name`, `type`, `options`, `data`. */
export type ErrandSpec = Body<"postV1Errands">;
export type ErrandOptions = NonNullable<ErrandSpec["options"]>;
export type Status = Errand["status"];
export type Log = NonNullable<Errand["logs"]>[number];
export type Severity = Log["severity"];
/** Any JSON object: an errand's `data` and `results`. */
export type JsonObject = NonNullable<Errand["results"]>;

/** Which errands `list` answers: a status, a type, both, or a name prefix. */
export type ListFilter = Pick<Query<"getV1Errands">, "status" | "type" | "name">;
/** A page of a list; `next` is the `after` of the following page, null on the last. */
export type ErrandPage = Answer<"getV1Errands">;
export type ScheduledQuery = Query<"getV1ErrandsScheduled">;
export type ScheduledPage = Answer<"getV1ErrandsScheduled">;

/** One report of an ack: `{id, attempt?, completed: {results?}}` or `{id, attempt?, failed: {reason}}`. */
export type AckItem = Body<"postV1ErrandsAck">["items"][number];
/** One item's outcome: 200 with the errand, or 404/409 with the error envelope. */
export type AckResult = Answer<"postV1ErrandsAck">["results"][number];

/** `{"status":S}` or `{"delete":true}`. */
export type BulkChange = Body<"postV1ErrandsUpdateByKeyByVal">;
/** `{"ids":[…]}` or `{"filter":{…},"after"?:id}`. */
export type BulkSelection = Body<"postV1ErrandsRetry">;
export type BulkAnswer = Answer<"postV1ErrandsRetry">;

export type PipelineSpec = Body<"postV1Pipeline">;
/** A pipeline with its errands and dependencies. */
export type Pipeline = Answer<"getV1PipelineById">["results"];
/** A pipeline as lists answer it, without errands and dependencies. */
export type PipelineSummary = Answer<"getV1Pipelines">["results"][number];
export type PipelineFilter = Pick<Query<"getV1Pipelines">, "status">;
export type PipelinePage = Answer<"getV1Pipelines">;

export type TypeSummary = Answer<"getV1Types">["results"][number];
export type TypeControls = Body<"putV1TypesByType">;
export type HistoryQuery = Query<"getV1TypesHistory">;
export type HistoryMinute = Answer<"getV1TypesHistory">["results"][number];

/** A schedule: its cron or interval, the errand it makes, its next and last run. */
export type Schedule = Answer<"getV1SchedulesByName">["results"];
/** What a schedule's PUT takes: `cron` (with `timezone`) or `every`, and the `errand`. */
export type ScheduleSpec = Body<"putV1SchedulesByName">;
export type SchedulePage = Answer<"getV1Schedules">;

export type Health = Answer<"getHealth">;

/** The error envelope every refusal carries. */
export type ErrorEnvelope = Json<components["responses"]["StorageUnavailable"]>;

/** The data of an event frame, with the frame's id. */
export type ErrandEvent = components["schemas"]["ErrandEvent"] & { id: number };
export type EventName = ErrandEvent["event"];
/** Events after the id a stream resumed from were pruned: what it shows may miss changes. */
export type MissedEvent = components["schemas"]["MissedEvent"];
/** The id a stream resumed from is beyond the newest: read again what you hold. */
export type ResetEvent = components["schemas"]["ResetEvent"];
export type StreamEvent = ErrandEvent | MissedEvent | ResetEvent;
