// An online, consistent copy of the database: VACUUM INTO from a connection of its own, which
// reads one snapshot while the server goes on writing (WAL readers never block the writer).

import { Database } from "bun:sqlite";
import { closeSync, fsyncSync, openSync, statSync } from "node:fs";

/** Copies the database at `source` into the new file `target`; returns the copy's size. */
export function backupDatabase(source: string, target: string): number {
  const db = new Database(source, { readonly: true, strict: true });
  try {
    db.run("PRAGMA busy_timeout = 5000");
    db.query("VACUUM INTO ?").run(target);
  } finally {
    db.close();
  }
  // VACUUM INTO does not sync its output: the copy is on disk before we say it is done.
  const fd = openSync(target, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return statSync(target).size;
}
