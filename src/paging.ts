// Lists in id order, a page at a time: one page with the cursor of the next (?limit=&after=),
// or the whole list streamed page by page, so memory stays flat however long it is.

/** Reads up to `limit` rows with an id after `after`, in id order. */
export type ReadPage<R> = (after: string, limit: number) => Promise<R[]>;

/** Rows of the whole list after `after`, `size` at a time. */
export async function* pagesOf<R extends { id: string }>(
  read: ReadPage<R>,
  after = "",
  size = 500,
): AsyncGenerator<R[]> {
  let cursor = after;
  for (;;) {
    const rows = await read(cursor, size);
    if (rows.length === 0) return;
    yield rows;
    if (rows.length < size) return;
    cursor = rows[rows.length - 1]?.id ?? cursor;
  }
}

/** One page, and the `after` of the next: null when this page is the last. */
export async function pageOf<R extends { id: string }>(
  read: ReadPage<R>,
  after: string,
  limit: number,
): Promise<{ rows: R[]; next: string | null }> {
  const rows = await read(after, limit + 1);
  if (rows.length <= limit) return { rows, next: null };
  const kept = rows.slice(0, limit);
  return { rows: kept, next: kept[kept.length - 1]?.id ?? null };
}

/**
 * Streams {"status":"OK","results":[…]} a page at a time. Pages may come asynchronously (clear
 * yields each batch once it is on disk). The first is read before answering, so a store that
 * cannot answer it is an error answer (503), not a 200 cut short; a later one that fails cuts
 * the answer short, so the client sees it is incomplete.
 */
export async function streamList(pages: AsyncIterator<unknown[]>): Promise<Response> {
  const encoder = new TextEncoder();
  let first = true;
  let read: IteratorResult<unknown[]> | null = await pages.next();
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"status":"OK","results":['));
    },
    async pull(controller) {
      const next = read ?? (await pages.next());
      read = null;
      if (next.done) {
        controller.enqueue(encoder.encode("]}"));
        controller.close();
        return;
      }
      let chunk = "";
      for (const item of next.value) {
        chunk += (first ? "" : ",") + JSON.stringify(item);
        first = false;
      }
      controller.enqueue(encoder.encode(chunk));
    },
    async cancel() {
      await pages.return?.(undefined);
    },
  });
  return new Response(stream, { headers: { "content-type": "application/json" } });
}
