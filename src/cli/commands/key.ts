// `bhatti key rotate`: re-encrypt every secret under a new age identity.
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";
import { openDb } from "../../store/db.js";
import { rotateKey } from "../../secrets/rotate.js";
import { claimPidFile, livePid, releasePidFile } from "../../server/pidfile.js";
import { DAEMON_MARKER } from "../../server/daemon.js";

const USAGE = "bhatti key rotate [--data-dir DIR] [--json]";

export async function keyCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "rotate") throw new UsageError(`usage: ${USAGE}`);
  const { values } = parse(rest, {}, { usage: USAGE });
  const paths = dataPaths(ensureDataDir(resolveDataDir(values["data-dir"])));
  const daemon = livePid(paths.pidFile, DAEMON_MARKER);
  if (daemon) throw new Error(`a bhatti daemon (pid ${daemon}) is running on ${paths.dataDir}; stop it before rotating the key`);
  claimPidFile(paths.rotateLock, "rotate", "another key rotation");
  try {
    // Re-check after taking the lock: a daemon that started in between would hold the old key in memory.
    const late = livePid(paths.pidFile, DAEMON_MARKER);
    if (late) throw new Error(`a bhatti daemon (pid ${late}) is running on ${paths.dataDir}; stop it before rotating the key`);
    const db = openDb(paths.db);
    try {
      const res = await rotateKey(paths.key, db);
      if (values.json) printJson({ rotated: res.count, sandbox_tokens: res.tokens, old_recipient: res.oldRecipient, recipient: res.newRecipient });
      else process.stdout.write(`re-encrypted ${res.count} secret(s) and ${res.tokens} sandbox token(s) to ${res.newRecipient}\nback up the new ${paths.key} together with state.db\n`);
    } finally {
      db.close();
    }
  } finally {
    releasePidFile(paths.rotateLock);
  }
  return 0;
}
