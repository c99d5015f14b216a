// `bhatti admin backup --to DIR`: a consistent copy of age.key and state.db,
// together (either alone cannot decrypt anything). Safe while the daemon runs:
// SQLite's VACUUM INTO takes a transactionally consistent snapshot.
import { copyFileSync, mkdirSync, existsSync, chmodSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { resolveDataDir, dataPaths } from "../../util/paths.js";
import { openDb } from "../../store/db.js";
import { readKeyFile } from "../../secrets/keyring.js";

const USAGE = "bhatti admin backup --to DIR [--data-dir DIR] [--json]";

export async function adminCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "backup") throw new UsageError(`usage: ${USAGE}`);
  const { values } = parse(rest, { to: { type: "string" } }, { usage: USAGE });
  if (!values.to) throw new UsageError(`--to is required\nusage: ${USAGE}`);
  const paths = dataPaths(resolveDataDir(values["data-dir"]));
  const key = readKeyFile(paths.key);
  if (key.kind !== "ok") throw new Error(`${paths.key} is ${key.kind === "invalid" ? "not a valid age identity file" : key.kind}; nothing to back up`);
  if (key.identities.length !== 1) throw new Error(`${paths.key} holds an unfinished key rotation; start the daemon once (it settles the key) and back up again`);
  const to = resolve(values.to);
  mkdirSync(to, { recursive: true, mode: 0o700 });
  const dbOut = join(to, "state.db");
  const keyOut = join(to, "age.key");
  if (existsSync(dbOut) || existsSync(keyOut)) throw new Error(`${to} already holds a backup; choose an empty directory`);
  const db = openDb(paths.db);
  try {
    db.prepare("VACUUM INTO ?").run(dbOut);
  } finally {
    db.close();
  }
  chmodSync(dbOut, 0o600);
  copyFileSync(paths.key, keyOut);
  chmodSync(keyOut, 0o600);
  if (values.json) printJson({ backup: to, files: [keyOut, dbOut] });
  else process.stdout.write(`backed up ${paths.key} and ${paths.db} to ${to}\nkeep the two files together: neither alone can decrypt anything\n`);
  return 0;
}
