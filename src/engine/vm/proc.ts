// The QEMU process of a sandbox: spawn (detached, so it outlives a daemon
// restart), recognise (for reattach), stop.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { TOOL_ENV } from "../runtime.js";
import { QEMU_BIN } from "./qemu.js";
import { isZombie as isZombieStat, listPids, readProcFile } from "../../util/proc.js";

export interface QemuProcess {
  pid: number;
  /** Resolves with QEMU's exit description once it has exited (only while this daemon is its parent). */
  exited: Promise<string>;
}

/**
 * Starts QEMU in its own session with a cleared environment, stdout/stderr
 * appended to logFile (QEMU's own messages; it never sees a secret value in
 * argv: the config drive comes as an inherited fd).
 */
export function spawnQemu(args: string[], logFile: string, driveFd?: number): QemuProcess {
  const fd = openSync(logFile, "a", 0o600);
  try {
    // driveFd (the nameless config drive) becomes QEMU's fd 3.
    const child = spawn(QEMU_BIN, args, { env: TOOL_ENV, detached: true, stdio: ["ignore", fd, fd, ...(driveFd === undefined ? [] : [driveFd])] });
    const exited = new Promise<string>((resolve) => {
      child.on("error", (e) => resolve(`could not start ${QEMU_BIN}: ${e.message}`));
      child.on("exit", (code, signal) => resolve(signal ? `killed by ${signal}` : `exit ${code}`));
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${QEMU_BIN}`);
    return { pid: child.pid, exited };
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True if pid is a QEMU process started for sandbox id (its argv names the sandbox's agent socket). */
export function isOurQemu(pid: number, id: string, agentSocket: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  // A failure other than "no such process" (EMFILE…) throws: it must not read as "dead".
  const cmdline = readProcFile(`/proc/${pid}/cmdline`);
  if (cmdline === null) return false;
  const argv = cmdline.split("\0");
  if (!argv[0]?.endsWith(QEMU_BIN)) return false;
  const stat = readProcFile(`/proc/${pid}/stat`);
  if (stat === null || isZombieStat(stat)) return false; // a zombie is dead
  return argv.includes(`bhatti-${id},process=bhatti-vm-${id}`) && argv.some((a) => a.includes(`path=${agentSocket},`));
}

/** QEMU processes of sandbox id (by argv), for when the recorded pid is missing or stale. */
export function findOurQemu(id: string, agentSocket: string): number[] {
  return listPids().filter((pid) => {
    try {
      return isOurQemu(pid, id, agentSocket);
    } catch {
      return false; // cannot tell: not proven ours
    }
  });
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs = 2000): Promise<void> {
  const gone = (): boolean => !isAlive(pid) || isZombie(pid);
  if (gone()) return;
  try { process.kill(pid, "SIGTERM"); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (!gone() && Date.now() < deadline) await sleep(20);
  if (gone()) return;
  try { process.kill(pid, "SIGKILL"); } catch { return; }
  for (let i = 0; i < 250 && !gone(); i++) await sleep(20);
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
