// `bhatti admin backup --to DIR`: a consistent copy of age.key and state.db,
// together (either alone cannot decrypt anything). Safe while the daemon runs:
// SQLite's VACUUM INTO takes a transactionally consistent snapshot.
//
// The backup holds the key to every secret, so nothing about it may be
// steered by someone else on the host: DIR is created 0700 or must be an
// existing real directory (not a symlink) owned by us and not writable by
// others; each file is created O_EXCL|O_NOFOLLOW with mode 0600 from the first
// byte (umask 077 while SQLite creates its file), never chmod-ed afterwards.
import { closeSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { operatorOptions, run } from "../args.js";
import { printJson } from "../output.js";
import { resolveDataDir, dataPaths } from "../../util/paths.js";

export function register(cmd: Command): void {
  operatorOptions(cmd.command("backup").description("copy age.key and state.db, consistently, into a private directory")
    .requiredOption("--to <dir>", "destination: a new directory, or an empty private one of yours"))
    .action(run((o: { to: string; dataDir?: string; json?: boolean }) => backup(o.to, o.dataDir, !!o.json)));
}

async function backup(toFlag: string, dataDirFlag: string | undefined, json: boolean): Promise<number> {
  const { openDb } = await import("../../store/db.js");
  const { assertKeyFileMode, readKeyFile } = await import("../../secrets/keyring.js");
  const values = { to: toFlag, "data-dir": dataDirFlag, json };
  const paths = dataPaths(resolveDataDir(values["data-dir"]));
  assertKeyFileMode(paths.key);
  const key = readKeyFile(paths.key);
  if (key.kind !== "ok") throw new Error(`${paths.key} is ${key.kind === "invalid" ? "not a valid age identity file" : key.kind}; nothing to back up`);
  if (key.identities.length !== 1) throw new Error(`${paths.key} holds an unfinished key rotation; start the daemon once (it settles the key) and back up again`);
  const to = backupDir(resolve(values.to));
  const dbOut = join(to, "state.db");
  const keyOut = join(to, "age.key");
  for (const f of [dbOut, keyOut, `${dbOut}-wal`, `${dbOut}-shm`, `${dbOut}-journal`]) {
    if (exists(f)) throw new Error(`${to} already holds a backup (${f} exists); choose an empty directory`);
  }
  // age.key first: O_EXCL|O_NOFOLLOW, 0600 at creation.
  writeNew(keyOut, readFileSync(paths.key));
  // state.db: reserve the name the same way (0600, no symlink can be planted
  // in its place), then let VACUUM INTO fill it; it accepts an empty file.
  writeNew(dbOut, Buffer.alloc(0));
  const db = openDb(paths.db);
  const old = process.umask(0o077);
  try {
    db.prepare("VACUUM INTO ?").run(dbOut);
  } catch (e) {
    try { unlinkSync(dbOut); } catch { /* gone */ }
    try { unlinkSync(keyOut); } catch { /* gone */ }
    throw e;
  } finally {
    process.umask(old);
    db.close();
  }
  const st = lstatSync(dbOut);
  if (!st.isFile() || (st.mode & 0o077)) throw new Error(`${dbOut} is not a private regular file after the copy; remove the backup and investigate`);
  if (values.json) printJson({ backup: to, files: [keyOut, dbOut] });
  else process.stdout.write(`backed up ${paths.key} and ${paths.db} to ${to}\nkeep the two files together: neither alone can decrypt anything\n`);
  return 0;
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** DIR: created 0700, or an existing directory that is not a symlink, is ours and is not writable by others. */
function backupDir(to: string): string {
  if (!exists(to)) {
    mkdirSync(to, { recursive: true, mode: 0o700 });
  }
  const st = lstatSync(to);
  if (st.isSymbolicLink()) throw new Error(`${to} is a symbolic link; bhatti will not write a backup through it (give the real directory)`);
  if (!st.isDirectory()) throw new Error(`${to} is not a directory`);
  if (st.uid !== process.getuid?.()) throw new Error(`${to} is owned by uid ${st.uid}, not by this user; choose a directory of your own`);
  if (st.mode & 0o022) throw new Error(`${to} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); choose a private directory (chmod 700)`);
  // A symlinked parent component is the operator's own layout (e.g. /home -> /data): allowed, but the final directory is the real one.
  return realpathSync(to);
}

/** Creates path (must not exist, must not be a symlink) with mode 0600 and writes data, durably. */
function writeNew(path: string, data: Buffer): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    if (data.length) writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
