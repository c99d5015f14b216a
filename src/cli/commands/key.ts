// `bhatti key rotate`: re-encrypt every secret under a new age identity.
import type { Command } from "commander";
import { operatorOptions, run } from "../args.js";
import { printJson } from "../output.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";

export function register(cmd: Command): void {
  operatorOptions(cmd.command("rotate").description("re-encrypt every secret under a new age identity (the daemon must be stopped)"))
    .action(run((o: { dataDir?: string; json?: boolean }) => rotate({ "data-dir": o.dataDir, json: o.json })));
}

async function rotate(values: { "data-dir"?: string; json?: boolean }): Promise<number> {
  const { openDb } = await import("../../store/db.js");
  const { rotateKey } = await import("../../secrets/rotate.js");
  const { claimPidFile, livePid, releasePidFile } = await import("../../server/pidfile.js");
  const { DAEMON_MARKER } = await import("../../server/daemon.js");
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
