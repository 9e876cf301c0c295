// The errand as clients see it, from the stored record and its logs.

import type { ErrandRecord, LogEntry } from "../store/records.ts";
import type { Errand } from "./model.ts";

/** v1's shape: optional fields omitted when empty, logs only when there are some. */
export function toErrand(record: ErrandRecord, logs: LogEntry[]): Errand {
  const errand: Errand = {
    id: record.id,
    name: record.name,
    type: record.type,
    options: record.options,
    created: record.created,
    status: record.status,
    progress: record.progress,
    attempts: record.attempts,
  };
  // Stored as JSON.stringify wrote them: an empty object is exactly "{}" (omitted, as v1).
  if (record.data !== null && record.data !== "{}") errand.data = JSON.parse(record.data);
  if (record.results !== null && record.results !== "{}") {
    errand.results = JSON.parse(record.results);
  }
  if (record.started) errand.started = record.started;
  if (record.failed) errand.failed = record.failed;
  if (record.completed) errand.completed = record.completed;
  if (logs.length > 0) errand.logs = logs;
  if (record.pipeline !== null) errand.pipeline = record.pipeline;
  if (record.runAt !== null) errand.runAt = record.runAt;
  if (record.ttlDeadline !== null) errand.ttlDeadline = record.ttlDeadline;
  if (record.heartbeatDeadline !== null) errand.heartbeatDeadline = record.heartbeatDeadline;
  return errand;
}
