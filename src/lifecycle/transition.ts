// What every rule answers: the errand after the change, the event it causes, and the log line
// it appends. The service saves the errand, appends the line, and records the event.

import type { ErrandRecord, EventName, LogEntry, Severity } from "../store/records.ts";

export interface Transition {
  errand: ErrandRecord;
  /** The event to record, or null for a change clients are not told of (a heartbeat). */
  event: EventName | null;
  log: LogEntry | null;
}

export function entry(severity: Severity, message: string, now: number): LogEntry {
  return { severity, message: keptMessage(message), timestamp: now };
}

/** Longest log message or failure reason kept, in characters (the rest is cut, not refused). */
export const MAX_LOG_MESSAGE = 10_000;

/**
 * A log message or failure reason as kept: longer ones (a long stack trace) are cut, not
 * refused, since refusing would leave the worker's report unrecorded.
 */
export function keptMessage(message: string): string {
  if (message.length <= MAX_LOG_MESSAGE) return message;
  // Not between the two halves of a surrogate pair (an emoji, say).
  const high = message.charCodeAt(MAX_LOG_MESSAGE - 1);
  const end = high >= 0xd800 && high <= 0xdbff ? MAX_LOG_MESSAGE - 1 : MAX_LOG_MESSAGE;
  return `${message.slice(0, end)}… [${message.length - end} more characters cut]`;
}
