// Operations outside HTTP: the online backup, the install script and the systemd unit.

import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BackupError, backup } from "../src/ops/backup.ts";
import { makeApp, removeTempDirs, runCommand, tempDir } from "./harness.ts";

afterAll(removeTempDirs);

const ROOT = join(import.meta.dir, "..");

function openCopy(path: string) {
  const db = new Database(path, { readonly: true });
  const check = db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get();
  const errands = db.query<{ n: number }, []>("SELECT count(*) AS n FROM errands").get()?.n;
  db.close();
  return { integrity: check?.integrity_check, errands };
}

describe("backup", () => {
  test("on PostgreSQL it names pg_dump instead, exit 2, copying nothing", async () => {
    const dir = tempDir();
    const run = await runCommand(
      [process.execPath, join(ROOT, "src/main.ts"), "backup", join(dir, "copy.sqlite")],
      { env: { ...process.env, ERRANDS_DATABASE: "postgres://nobody@127.0.0.1:1/none" } },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("pg_dump");
    expect(existsSync(join(dir, "copy.sqlite"))).toBe(false);
  });

  test("copies the committed errands, not the group still open on the writer", async () => {
    const app = makeApp();
    for (let i = 0; i < 20; i++) {
      expect((await app.call("POST", "/v1/errands", { name: `b${i}`, type: "copy" })).status).toBe(
        200,
      );
    }
    // Not awaited: this create sits in the open, uncommitted group while the copy is made.
    const pending = app.call("POST", "/v1/errands", { name: "late", type: "copy" });
    const target = join(tempDir(), "copy.sqlite");
    const copy = backup(app.store.path, target);
    expect((await pending).status).toBe(200);
    expect(copy.bytes).toBe(statSync(target).size);
    expect(openCopy(target)).toEqual({ integrity: "ok", errands: 20 });
    app.close();
  });

  test("refuses to overwrite an existing file", () => {
    const app = makeApp();
    const target = join(tempDir(), "taken.sqlite");
    writeFileSync(target, "keep me");
    expect(() => backup(app.store.path, target)).toThrow(BackupError);
    expect(readFileSync(target, "utf8")).toBe("keep me");
    app.close();
  });

  test("refuses a storage path with no database instead of creating one", () => {
    const dir = tempDir();
    expect(() => backup(join(dir, "absent.sqlite"), join(dir, "copy.sqlite"))).toThrow(BackupError);
    expect(existsSync(join(dir, "absent.sqlite"))).toBe(false);
  });
});

describe("install.sh", () => {
  const run = async (destdir: string, ...args: string[]) => {
    const { code, stdout, stderr } = await runCommand(
      ["bash", join(ROOT, "scripts/install.sh"), ...args],
      { env: { ...process.env, DESTDIR: destdir } },
    );
    return { code, output: stdout + stderr };
  };
  /** A stand-in executable: the script only needs one that answers `version`. */
  const fakeBinary = () => {
    const path = join(tempDir(), "errands-server");
    writeFileSync(path, "#!/bin/sh\necho 9.9.9\n", { mode: 0o755 });
    return path;
  };

  test("installs the binary, the unit and a settings template; a second run keeps the settings", async () => {
    const dest = tempDir();
    const binary = fakeBinary();
    expect((await run(dest, binary)).code).toBe(0);
    const unit = join(dest, "etc/systemd/system/errands-server.service");
    const settings = join(dest, "etc/errands/errands.env");
    expect(statSync(join(dest, "usr/local/bin/errands-server")).mode & 0o777).toBe(0o755);
    expect(readFileSync(unit, "utf8")).toBe(
      readFileSync(join(ROOT, "systemd/errands-server.service"), "utf8"),
    );
    expect(readFileSync(settings, "utf8")).toContain("#ERRANDS_TOKEN=");
    expect(statSync(settings).mode & 0o077).toBe(0);

    writeFileSync(settings, "ERRANDS_TOKEN=chosen\n");
    const again = await run(dest, binary);
    expect(again.code).toBe(0);
    expect(again.output).toContain("kept the settings");
    expect(readFileSync(settings, "utf8")).toBe("ERRANDS_TOKEN=chosen\n");
  });

  test("--uninstall removes the binary and unit but keeps the settings; --purge removes all", async () => {
    const dest = tempDir();
    expect((await run(dest, fakeBinary())).code).toBe(0);
    expect((await run(dest, "--uninstall")).code).toBe(0);
    expect(existsSync(join(dest, "usr/local/bin/errands-server"))).toBe(false);
    expect(existsSync(join(dest, "etc/systemd/system/errands-server.service"))).toBe(false);
    expect(existsSync(join(dest, "etc/errands/errands.env"))).toBe(true);
    expect((await run(dest, "--uninstall", "--purge")).code).toBe(0);
    expect(existsSync(join(dest, "etc/errands"))).toBe(false);
  });

  test("refuses a binary that does not exist", async () => {
    const result = await run(tempDir(), join(tempDir(), "missing"));
    expect(result.code).not.toBe(0);
    expect(result.output).toContain("no executable");
  });
});

describe("systemd unit", () => {
  const unit = readFileSync(join(ROOT, "systemd/errands-server.service"), "utf8");

  test("runs as a dynamic user with its state in /var/lib/errands and restarts on failure", () => {
    for (const line of [
      "DynamicUser=yes",
      "StateDirectory=errands",
      "Environment=ERRANDS_STORAGE=/var/lib/errands/",
      "EnvironmentFile=-/etc/errands/errands.env",
      "Restart=on-failure",
      "ProtectSystem=strict",
      "NoNewPrivileges=yes",
      "ExecStart=/usr/local/bin/errands-server serve",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
  });

  test("leaves Bun's JIT and system calls alone", () => {
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m);
    expect(unit).not.toMatch(/^SystemCallFilter=/m);
  });

  const analyze = Bun.which("systemd-analyze");
  test.skipIf(analyze === null)("passes systemd-analyze verify", async () => {
    // verify checks that ExecStart exists: point it at a stand-in executable.
    const dir = tempDir();
    const binary = join(dir, "errands-server");
    writeFileSync(binary, "#!/bin/sh\n", { mode: 0o755 });
    const copy = join(dir, "errands-server.service");
    writeFileSync(copy, unit.replace("/usr/local/bin/errands-server", binary));
    const proc = Bun.spawn([analyze ?? "", "verify", copy], { stdout: "pipe", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    // Unknown or misspelt settings are only warnings: any line about the unit is a failure.
    expect(stderr.split("\n").filter((line) => line.includes("errands-server"))).toEqual([]);
    expect(code).toBe(0);
  });
});
