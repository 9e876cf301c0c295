// `errands-server backup <file>`: copies the live database into a new file, consistent even
// while a server writes to it.

import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { backupDatabase } from "../store/sqlite/backup.ts";

export class BackupError extends Error {}

/** Writes the copy; refuses a target that exists or a source that does not. */
export function backup(storage: string, target: string): { path: string; bytes: number } {
  const path = resolve(target);
  if (!existsSync(storage)) throw new BackupError(`no database at ${storage}`);
  if (resolve(storage) === path) throw new BackupError("the backup cannot replace the database");
  if (existsSync(path)) throw new BackupError(`${path} already exists; choose a new file`);
  try {
    return { path, bytes: backupDatabase(storage, path) };
  } catch (error) {
    throw new BackupError(`backup failed: ${error instanceof Error ? error.message : error}`);
  }
}
