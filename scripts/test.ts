// The whole test command: type-check, lint, the suite on SQLite, then the suite again on
// PostgreSQL (ERRANDS_TEST_DATABASE, default the local server) when one answers, and loudly
// not when none does. Ends with one line: "N passed, N failed".
//
// Usage: bun scripts/test.ts [bun test filters…]

import { Glob, SQL } from "bun";

const filters = process.argv.slice(2);
const DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/test";
/** Files about the SQLite engine, the binary or the host alone: they run once, on SQLite. */
const SQLITE_ONLY = [
  "test/systemd.test.ts",
  "test/binary.test.ts",
  "test/crash.test.ts",
  "test/ops.test.ts",
  "test/config.test.ts",
  "test/duration.test.ts",
  "test/lifecycle.test.ts",
  "test/schedule-ticks.test.ts",
  "test/driver.sqlite.test.ts",
  // The page is a client of the API, which the rest of the suite checks on both engines.
  "test/dashboard.test.ts",
];

let passed = 0;
let failed = 0;

async function run(label: string, cmd: string[], env: Record<string, string> = {}) {
  process.stdout.write(`\n== ${label}: ${cmd.join(" ")}\n`);
  // The SQLite run must not inherit the PostgreSQL switch: each run names its own engine.
  const { ERRANDS_TEST_DATABASE: _switch, ...inherited } = process.env;
  const proc = Bun.spawn(cmd, {
    env: { ...inherited, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const piece = decoder.decode(chunk, { stream: true });
      text += piece;
      out.write(piece);
    }
  };
  await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)]);
  const code = await proc.exited;
  const count = (word: string) =>
    Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(text)?.[1] ?? 0);
  passed += count("pass");
  failed += count("fail");
  return code;
}

async function reachable(url: string): Promise<boolean> {
  const sql = new SQL(url, { max: 1, connectionTimeout: 3 });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.close().catch(() => {});
  }
}

const codes: number[] = [];
codes.push(await run("type-check", ["tsc", "--noEmit"]));
codes.push(await run("lint", ["biome", "check", "src", "test", "scripts", "client"]));
codes.push(await run("tests on SQLite", ["bun", "test", "--timeout", "60000", ...filters]));

const database = process.env.ERRANDS_TEST_DATABASE || DEFAULT_DATABASE;
if (await reachable(database)) {
  const files = filters.length > 0 ? filters : await engineFiles();
  codes.push(
    await run("tests on PostgreSQL", ["bun", "test", "--timeout", "120000", ...files], {
      ERRANDS_TEST_DATABASE: database,
    }),
  );
} else {
  const line = "!".repeat(78);
  process.stdout.write(
    `\n${line}\n!! No PostgreSQL answers at ${database.replace(/:[^:@/]*@/, ":***@")}:\n!! the suite did NOT run on the PostgreSQL engine. Set ERRANDS_TEST_DATABASE, or start one\n!! (.ci/run does).\n${line}\n`,
  );
  if (process.env.CI) codes.push(1);
}

process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(codes.some((c) => c !== 0) ? 1 : 0);

/** Every test file but those that run on SQLite alone. */
async function engineFiles(): Promise<string[]> {
  const glob = new Glob("test/**/*.test.ts");
  const files: string[] = [];
  for await (const file of glob.scan(".")) if (!SQLITE_ONLY.includes(file)) files.push(file);
  return files.sort();
}
