// /v1/schedules/…: recurring errands, created at each tick of a cron expression or interval.

import { Elysia, t } from "elysia";
import { errorBody, ok, Paging } from "../errands/model.ts";
import { streamList } from "../paging.ts";
import { Schedule, ScheduleBody, ScheduleName } from "./model.ts";
import type { ScheduleService } from "./service.ts";

const Name = t.Object({ name: t.String() });
const unknown = errorBody("No schedule has that name");
const saved = (created: boolean) =>
  t.Object({
    status: t.Literal("OK"),
    results: Schedule,
    created: t.Literal(created, {
      description: created ? "The schedule is new" : "An existing schedule was replaced",
    }),
  });

export function scheduleRoutes(schedules: ScheduleService) {
  const onePage = async (after: string, limit: number) => {
    const page = await schedules.page(after, limit);
    return { status: "OK" as const, results: page.schedules, next: page.next };
  };

  return new Elysia({ tags: ["schedules"] })
    .put(
      "/v1/schedules/:name",
      async ({ params, body, status }) => {
        const { schedule, created } = await schedules.put(params.name, body);
        if (created) return status(201, { status: "OK" as const, results: schedule, created });
        return { status: "OK" as const, results: schedule, created };
      },
      {
        params: t.Object({ name: ScheduleName }),
        body: ScheduleBody,
        response: {
          200: saved(false),
          201: saved(true),
          400: errorBody(
            "Named in `error`: the body breaks its schema (the errand as a create's body would), both or neither of `cron` and `every`, a cron expression croner cannot read or that never comes due, a time zone that is not an IANA name (or one with `every`), `every` under 1000 ms, or a name with control characters",
          ),
        },
        detail: {
          summary: "Create or replace a schedule",
          description:
            'Body `{"cron":"*/5 * * * *"` or `"every":ms`, `"timezone"?`, `"errand":{name,type,options,data}`, `"paused"?`, `"overlap"?:"allow"|"skip"}`. Each tick creates one errand (event `created`, log line `Created by schedule "<name>" for tick <ISO time>`), once across instances and restarts; ticks missed while no server ran make one catch-up errand. 201 with `created: true` for a new schedule, 200 with `created: false` for a replaced one: its last run is kept, and its next tick is worked out anew when its timing changed or it is resumed.',
        },
      },
    )
    .get(
      "/v1/schedules",
      ({ query }) => {
        if (query.limit === undefined) return streamList(schedules.pages(query.after ?? ""));
        return onePage(query.after ?? "", query.limit);
      },
      {
        query: t.Object({
          limit: Paging.properties.limit,
          after: t.Optional(
            t.String({
              maxLength: 255,
              description: "The `next` of the previous page: a schedule's name",
              error: "after must be a schedule's name, at most 255 characters",
            }),
          ),
        }),
        response: {
          200: t.Object({
            status: t.Literal("OK"),
            results: t.Array(Schedule),
            next: t.Optional(t.Union([t.String(), t.Null()])),
          }),
          400: errorBody("`limit` is not a whole number from 1 to 10000"),
        },
        detail: {
          summary: "List schedules",
          description:
            "Every schedule in name order, streamed, each with `nextRunAt`, `lastRunAt` and `lastErrandId`. With `limit`, one page; pass the answer's `next` as `after` for the following page.",
        },
      },
    )
    .get(
      "/v1/schedules/:name",
      async ({ params }) => ({ status: "OK" as const, results: await schedules.get(params.name) }),
      {
        params: Name,
        response: { 200: ok(Schedule), 404: unknown },
        detail: { summary: "Get a schedule, with its next and last run" },
      },
    )
    .delete(
      "/v1/schedules/:name",
      async ({ params }) => {
        await schedules.remove(params.name);
        return { status: "OK" as const };
      },
      {
        params: Name,
        response: { 200: t.Object({ status: t.Literal("OK") }), 404: unknown },
        detail: {
          summary: "Delete a schedule",
          description: "It ticks no more; the errands it created stay.",
        },
      },
    );
}
