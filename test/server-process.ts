// The server as a process of its own, for tests that need a real socket, a kill -9 or several
// instances: a free port, `bun src/main.ts serve` on it, a bounded wait until it answers.

import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
/** What a process printed last, kept for the message of a test that fails. */
const OUTPUT_KEPT = 64 * 1024;

/** A port nothing listens on now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port ?? 0;
  await probe.stop(true);
  return port;
}

export interface ServerProcess {
  proc: Bun.Subprocess;
  /** http://127.0.0.1:<port> */
  base: string;
  /** The end of what it wrote to stdout and stderr. */
  output(): string;
  /** Sends a signal and resolves with the exit code once it has exited. */
  stop(signal?: NodeJS.Signals | number): Promise<number>;
}

/**
 * Starts `src/main.ts serve` on a free port of 127.0.0.1 with `env` added to this process's
 * environment, and waits (bounded) until `ready` answers 200.
 */
export async function startServer(
  env: Record<string, string>,
  options: { ready?: string; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const proc = Bun.spawn([process.execPath, "src/main.ts", "serve"], {
    cwd: ROOT,
    env: { ...process.env, ...env, ERRANDS_PORT: `127.0.0.1:${port}` },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  // Read all along: a pipe nobody reads would block the server once full.
  let output = "";
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      output = (output + decoder.decode(chunk, { stream: true })).slice(-OUTPUT_KEPT);
    }
  };
  const reading = Promise.all([keep(proc.stdout), keep(proc.stderr)]).catch(() => {});
  const server: ServerProcess = {
    proc,
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await proc.exited;
      await reading;
      return code;
    },
  };
  const ready = options.ready ?? "/health";
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  while (Date.now() < deadline && proc.exitCode === null) {
    const up = await fetch(`${server.base}${ready}`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) return server;
    await Bun.sleep(20);
  }
  await server.stop("SIGKILL");
  throw new Error(`the server did not start:\n${output}`);
}
