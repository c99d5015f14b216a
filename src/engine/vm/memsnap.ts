// Memory snapshots of a VM (issue 14): QEMU's migration stream to a file,
// encrypted on its way out by the age CLI with the daemon's public key
// (`exec:age -r RECIPIENT -o FILE`), and read back through `age -d -i
// <data_dir>/age.key` into a new QEMU started with `-incoming`. The stream
// holds the guest's whole memory (its env and secrets among it): it is never
// on disk in plaintext; QEMU hands it to age through a pipe.
import { existsSync, statSync } from "node:fs";
import { qmp } from "./qmp.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quoted(path: string): string {
  if (!/^[A-Za-z0-9_./+-]+$/.test(path)) throw new Error(`path ${JSON.stringify(path)} cannot be put in a QEMU exec: URI`);
  return path;
}

async function waitMigration(qmpSock: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const st = (await qmp(qmpSock, "query-migrate")) as { status?: string; "error-desc"?: string };
    if (st.status === "completed") return;
    if (st.status === "failed" || st.status === "cancelled") throw new Error(`QEMU migration ${st.status}: ${st["error-desc"] ?? "no detail"}`);
    if (Date.now() > deadline) throw new Error(`QEMU migration not done within ${timeoutMs} ms (status ${st.status})`);
    await sleep(delay);
  }
}

/** Stops the vCPUs and writes the VM's state, age-encrypted, to file. QEMU keeps running (paused) afterwards. */
export async function saveMemory(qmpSock: string, file: string, recipient: string, timeoutMs = 300_000): Promise<void> {
  if (!/^age1[0-9a-z]+$/.test(recipient)) throw new Error("not an age recipient");
  await qmp(qmpSock, "stop");
  await qmp(qmpSock, "migrate", { uri: `exec:age -r ${recipient} -o ${quoted(file)}` });
  await waitMigration(qmpSock, timeoutMs);
  if (!existsSync(file) || statSync(file).size === 0) throw new Error("the memory snapshot was not written");
}

/** QEMU arguments that restore a VM from file (decrypted by age with the daemon's key file). */
export function incomingArgs(file: string, keyFile: string): string[] {
  return ["-incoming", `exec:age -d -i ${quoted(keyFile)} ${quoted(file)}`];
}

/** Waits for an incoming restore to finish, then runs the vCPUs. */
export async function finishRestore(qmpSock: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (existsSync(qmpSock)) {
      const st = (await qmp(qmpSock, "query-status").catch(() => null)) as { status?: string } | null;
      if (st && st.status !== "inmigrate") {
        if (st.status !== "running") await qmp(qmpSock, "cont");
        return;
      }
    }
    if (Date.now() > deadline) throw new Error(`restoring the VM's memory did not finish within ${timeoutMs} ms`);
    await sleep(delay);
  }
}
