// Reads a Server-Sent Events response as a client does, for tests.

export interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: string;
}

export function parseFrames(text: string): Frame[] {
  const frames: Frame[] = [];
  for (const block of text.split("\n\n")) {
    if (block === "") continue;
    const frame: Frame = {};
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) frame.comment = line.slice(1).trim();
      const at = line.indexOf(": ");
      if (at < 0) continue;
      const field = line.slice(0, at) as keyof Frame;
      if (["id", "event", "data", "retry"].includes(field)) frame[field] = line.slice(at + 2);
    }
    frames.push(frame);
  }
  return frames;
}

export class SseReader {
  text = "";
  done = false;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(response: Response) {
    if (!response.body) throw new Error("no body");
    this.reader = response.body.getReader() as unknown as ReadableStreamDefaultReader<Uint8Array>;
    void this.pump();
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await this.reader.read();
        if (done) break;
        this.text += decoder.decode(value, { stream: true });
      }
    } catch {
      // The stream was cut.
    }
    this.done = true;
  }

  /** The complete frames so far. */
  get frames(): Frame[] {
    const end = this.text.lastIndexOf("\n\n");
    return end < 0 ? [] : parseFrames(this.text.slice(0, end + 2));
  }

  /** Frames that carry an event (`event: message`), parsed. */
  get events(): Array<{ id: number; event: string; errand: { id: string; status: string } }> {
    return this.frames
      .filter((f) => f.event === "message")
      .map((f) => ({ id: Number(f.id), ...JSON.parse(f.data ?? "{}") }));
  }

  /** Waits until `ready()` holds; fails after `ms` so a broken stream cannot hang the suite. */
  async until(ready: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (Date.now() > deadline) throw new Error(`stream never got there; it holds:\n${this.text}`);
      await Bun.sleep(2);
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

/** Waits until `ready()` holds, bounded so a bug fails the test instead of hanging it. */
export async function eventually(
  ready: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error("condition never held");
    await Bun.sleep(2);
  }
}
