// Schemas of the event stream's frames, named in the OpenAPI document so that clients derive
// their types from them: an SSE body has no JSON schema of its own to carry them.

import { t } from "elysia";
import { Errand, Integer, Log } from "../errands/model.ts";
import { EVENT_NAMES } from "../store/records.ts";

/** The data of an `event: message` frame: the change, as the bus records it. */
export const ErrandEventData = t.Object(
  {
    event: t.Union(
      EVENT_NAMES.map((name) => t.Literal(name)),
      { description: "The event's name" },
    ),
    errand: t.Omit(Errand, ["logs", "dependencyResults"], {
      description: "The errand after the change, without its logs",
      examples: Errand.examples.map(({ logs: _logs, ...rest }: Record<string, unknown>) => rest),
    }),
    log: t.Optional(
      t.Object(Log.properties, { description: "The log entry the change appended, if any" }),
    ),
  },
  { description: "The data of an `event: message` frame; the frame's `id` is the event's id" },
);

/** The data of an `event: missed` frame: events after the client's id were pruned. */
export const MissedEventData = t.Object(
  {
    event: t.Literal("missed"),
    after: Integer({ description: "The id the client resumed from" }),
    resumedAt: Integer({ description: "The first id kept, where the replay starts" }),
  },
  { description: "The data of an `event: missed` frame (no `id`)" },
);

/** The data of an `event: reset` frame: the client's id is beyond the newest event. */
export const ResetEventData = t.Object(
  {
    event: t.Literal("reset"),
    after: Integer({ description: "The id the client resumed from" }),
    newest: Integer({ description: "The newest event id, the frame's own `id`" }),
  },
  { description: "The data of an `event: reset` frame; the stream goes on after `newest`" },
);

/** Named in the document's components, where the stream's description points. */
export const EVENT_MODELS = {
  ErrandEvent: ErrandEventData,
  MissedEvent: MissedEventData,
  ResetEvent: ResetEventData,
};
