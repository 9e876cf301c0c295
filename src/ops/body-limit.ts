// ERRANDS_MAX_BODY: a body over the limit is refused with 413, whether it announces its size
// (Content-Length, checked before anything is read) or not (counted while it is read).

import { DomainError } from "../errors.ts";

export class BodyTooLarge extends DomainError {
  constructor(limit: number) {
    super(413, "Body too large", `the body is larger than ${limit} bytes (ERRANDS_MAX_BODY)`);
  }
}

export function declaresTooLarge(request: Request, limit: number): boolean {
  const length = Number(request.headers.get("content-length") ?? 0);
  return Number.isFinite(length) && length > limit;
}

/** The body as text, refused once it passes `limit` bytes. */
export async function readBodyText(request: Request, limit: number): Promise<string> {
  if (request.body === null) return "";
  // With a Content-Length the runtime holds the body to that size: read it in one go.
  if (request.headers.has("content-length")) {
    if (declaresTooLarge(request, limit)) throw new BodyTooLarge(limit);
    return request.text();
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new BodyTooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
