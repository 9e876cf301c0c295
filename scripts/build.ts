// Builds the executables: dist/errands-server (x86-64 with AVX2) and
// dist/errands-server-baseline (any x86-64). Run with `bun run build`; `--only-main` skips the
// baseline one and `--outdir DIR` writes elsewhere than dist/ (the tests use both).
//
// The baseline runtime comes from the optional dependency @oven/bun-linux-x64-baseline, so the
// build works offline after `npm ci`. Without it, bun would download that runtime from the npm
// registry; when that fails too, the baseline build is skipped with a message, not an error.

import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/main.ts");
const outdirAt = process.argv.indexOf("--outdir");
const DIST = outdirAt > 0 ? resolve(process.argv[outdirAt + 1] ?? "dist") : join(ROOT, "dist");
const BASELINE_RUNTIME = join(ROOT, "node_modules/@oven/bun-linux-x64-baseline/bin/bun");

// No identifier minification: Elysia reads handlers' source to see what they use.
const COMMON = [
  "build",
  "--compile",
  "--minify-whitespace",
  "--minify-syntax",
  // Compiled ahead of time: start-up takes about half as long, for a few more MB.
  "--bytecode",
  // A stray .env or bunfig.toml on a host must never change the binary's behaviour.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];

async function compile(target: string, outfile: string, extra: string[] = []): Promise<string> {
  rmSync(outfile, { force: true }); // never leave an older build behind a failed one
  const args = [...COMMON, `--target=${target}`, ...extra, "--outfile", outfile, ENTRY];
  const proc = Bun.spawn([process.execPath, ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  if (code !== 0) throw new Error(`bun build --target=${target} failed:\n${out}${err}`);
  return outfile;
}

function report(path: string): void {
  const mb = (statSync(path).size / 1024 / 1024).toFixed(1);
  console.log(`built ${path} (${mb} MiB)`);
}

mkdirSync(DIST, { recursive: true });
report(await compile("bun-linux-x64", join(DIST, "errands-server")));

if (!process.argv.includes("--only-main")) {
  const local = existsSync(BASELINE_RUNTIME)
    ? [`--compile-executable-path=${BASELINE_RUNTIME}`]
    : [];
  try {
    report(await compile("bun-linux-x64-baseline", join(DIST, "errands-server-baseline"), local));
  } catch (error) {
    console.warn(
      "skipped errands-server-baseline: its runtime is neither installed " +
        "(npm optional dependency @oven/bun-linux-x64-baseline) nor downloadable.\n" +
        String(error instanceof Error ? error.message : error),
    );
  }
}
