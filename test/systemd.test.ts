// The unit and scripts/install.sh under a real systemd: a Debian root made by debootstrap is
// booted with systemd-nspawn, systemd running as its PID 1, and a oneshot unit in it
// (test/systemd/check.sh) installs the built binary and works the service: start, kill -9,
// stop, upgrade, uninstall. Needs root, debootstrap and systemd-nspawn (Debian's debootstrap
// and systemd-container); skipped without them. The Debian root is made once and kept in
// $ERRANDS_TEST_ROOTFS (default /var/tmp/errands-test-rootfs); each run resets what it adds.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";
import { removeTempDirs, runCommand, tempDir } from "./harness.ts";

const ROOT = join(import.meta.dir, "..");
const ROOTFS = process.env.ERRANDS_TEST_ROOTFS ?? "/var/tmp/errands-test-rootfs";
const nspawn = Bun.which("systemd-nspawn");
const debootstrap = Bun.which("debootstrap");
const canBoot = process.getuid?.() === 0 && nspawn !== null && debootstrap !== null;

/** What check.sh wrote: name → value. */
const seen = new Map<string, string>();
let console_ = "";

afterAll(removeTempDirs);

/** The Debian root, made by debootstrap the first time (into a side directory, then moved). */
async function debianRoot(): Promise<void> {
  if (existsSync(join(ROOTFS, "usr/lib/systemd/systemd"))) return;
  const partial = `${ROOTFS}.partial`;
  rmSync(partial, { recursive: true, force: true });
  const made = await runCommand([
    debootstrap ?? "",
    "--variant=minbase",
    "--include=systemd,systemd-sysv,dbus,curl",
    "bookworm",
    partial,
    "http://deb.debian.org/debian",
  ]);
  if (made.code !== 0) throw new Error(`debootstrap failed: ${made.stdout}${made.stderr}`);
  renameSync(partial, ROOTFS);
}

/** Puts the binary, install.sh, the unit and the check into the root; nothing of a last run. */
function stage(binary: string): void {
  for (const path of [
    "opt/errands",
    "etc/errands",
    "var/lib/private/errands",
    "var/lib/errands",
    "usr/local/bin/errands-server",
    "etc/systemd/system/errands-server.service",
    "etc/systemd/system/multi-user.target.wants/errands-server.service",
  ]) {
    rmSync(join(ROOTFS, path), { recursive: true, force: true });
  }
  const opt = join(ROOTFS, "opt/errands");
  mkdirSync(join(opt, "scripts"), { recursive: true });
  mkdirSync(join(opt, "systemd"));
  copyFileSync(binary, join(opt, "errands-server"));
  copyFileSync(join(ROOT, "scripts/install.sh"), join(opt, "scripts/install.sh"));
  copyFileSync(
    join(ROOT, "systemd/errands-server.service"),
    join(opt, "systemd/errands-server.service"),
  );
  copyFileSync(join(ROOT, "test/systemd/check.sh"), join(opt, "check.sh"));
  const units = join(ROOTFS, "etc/systemd/system");
  copyFileSync(
    join(ROOT, "test/systemd/errands-check.service"),
    join(units, "errands-check.service"),
  );
  const wanted = join(units, "multi-user.target.wants/errands-check.service");
  rmSync(wanted, { force: true });
  symlinkSync("../errands-check.service", wanted);
}

beforeAll(async () => {
  if (!canBoot) return;
  const out = tempDir();
  const build = await runCommand(
    [process.execPath, "scripts/build.ts", "--only-main", "--outdir", out],
    { cwd: ROOT },
  );
  if (build.code !== 0) throw new Error(`build failed: ${build.stderr}`);
  await debianRoot();
  stage(join(out, "errands-server"));
  // Not registered with a machine manager and no scope of its own: the host need not run
  // systemd. Its own network namespace, so the server's port is the container's alone.
  const boot = Bun.spawn(
    [
      nspawn ?? "",
      "--quiet",
      "--boot",
      "--register=no",
      "--keep-unit",
      "--private-network",
      "--machine=errands-check",
      `--directory=${ROOTFS}`,
    ],
    { stdout: "pipe", stderr: "pipe", stdin: "ignore" },
  );
  const limit = setTimeout(() => boot.kill(9), 240_000);
  const [, stdout, stderr] = await Promise.all([
    boot.exited,
    new Response(boot.stdout).text(),
    new Response(boot.stderr).text(),
  ]);
  clearTimeout(limit);
  console_ = stdout + stderr;
  const result = join(ROOTFS, "opt/errands/result");
  if (!existsSync(result)) return;
  for (const line of readFileSync(result, "utf8").split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) seen.set(line.slice(0, at), line.slice(at + 1));
  }
}, 600_000);

describe.skipIf(!canBoot)("under systemd as PID 1", () => {
  const value = (name: string) => {
    if (seen.get("done") !== "yes") {
      throw new Error(`the check did not finish; the container printed:\n${console_.slice(-4000)}`);
    }
    return seen.get(name);
  };

  test("install.sh installs, enables and starts the service", () => {
    expect(value("install")).toBe("0");
    expect(value("up")).toBe("0");
    expect(value("active")).toBe("active");
  });

  test("the server runs as an unprivileged dynamic user, its database its own", () => {
    const uid = Number(value("uid"));
    expect(uid).toBeGreaterThan(0);
    expect(value("capabilities")).toBe("0000000000000000");
    expect(value("no_new_privileges")).toBe("1");
    expect(value("created")).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(value("db_owner"))).toBe(uid);
    expect(value("db_mode")).toBe("600");
  });

  test("killed with SIGKILL, it is started again with its errands", () => {
    expect(value("up_after_kill")).toBe("0");
    expect(value("restarts")).toBe("1");
    expect(value("errand_after_kill")).toBe("200");
  });

  test("systemctl stop ends it cleanly on SIGTERM", () => {
    expect(value("stop_result")).toBe("success");
    expect(value("stop_exit_status")).toBe("0");
    expect(value("stopped_logged")).toBe("1");
  });

  test("installed again, it starts with the data it had", () => {
    expect(value("reinstall")).toBe("0");
    expect(value("up_after_reinstall")).toBe("0");
    expect(value("errand_after_reinstall")).toBe("200");
  });

  test("systemd rates the unit's exposure OK", () => {
    expect(value("exposure")).toMatch(/^\d+(\.\d+)? OK\b/);
  });

  test("--uninstall --purge leaves no unit and no data", () => {
    expect(value("uninstall")).toBe("0");
    expect(value("units_left")).toBe("0");
    expect(value("data_left")).toBe("0");
  });
});
