// Lists in key order (an id, either way, or a schedule's name), a page at a time: one page
// with the cursor of the next (?limit=&after=), or the whole list streamed page by page, so
// memory stays flat however long it is.

/** Reads up to `limit` rows with a key after `after` in the list's order. */
export type ReadPage<R> = (after: string, limit: number) => Promise<R[]>;

/** A row's key, where a page after it resumes: its id unless the list says otherwise. */
type KeyOf<R> = (row: R) => string;
const byId: KeyOf<{ id: string }> = (row) => row.id;

/** Rows of the whole list after `after`, `size` at a time. */
export function pagesOf<R extends { id: string }>(
  read: ReadPage<R>,
  after?: string,
  size?: number,
): AsyncGenerator<R[]>;
export function pagesOf<R>(
  read: ReadPage<R>,
  after: string,
  size: number,
  keyOf: KeyOf<R>,
): AsyncGenerator<R[]>;
export async function* pagesOf<R>(
  read: ReadPage<R>,
  after = "",
  size = 500,
  keyOf = byId as KeyOf<R>,
): AsyncGenerator<R[]> {
  let cursor = after;
  for (;;) {
    const rows = await read(cursor, size);
    const last = rows[rows.length - 1];
    if (last === undefined) return;
    yield rows;
    if (rows.length < size) return;
    cursor = keyOf(last);
  }
}

/** One page, and the `after` of the next: null when this page is the last. */
export function pageOf<R extends { id: string }>(
  read: ReadPage<R>,
  after: string,
  limit: number,
): Promise<{ rows: R[]; next: string | null }>;
export function pageOf<R>(
  read: ReadPage<R>,
  after: string,
  limit: number,
  keyOf: KeyOf<R>,
): Promise<{ rows: R[]; next: string | null }>;
export async function pageOf<R>(
  read: ReadPage<R>,
  after: string,
  limit: number,
  keyOf = byId as KeyOf<R>,
): Promise<{ rows: R[]; next: string | null }> {
  const rows = await read(after, limit + 1);
  if (rows.length <= limit) return { rows, next: null };
  const kept = rows.slice(0, limit);
  const last = kept[kept.length - 1];
  return { rows: kept, next: last === undefined ? null : keyOf(last) };
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
