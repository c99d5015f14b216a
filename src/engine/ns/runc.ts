// Thin wrapper over the runc CLI (Debian's 1.1.x). Every call uses this
// daemon's own state root so several daemons never see each other's containers.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { TOOL_ENV, run } from "../runtime.js";
import { tiedToParent } from "../../util/run.js";

export interface RuncState { id: string; pid: number; status: string; bundle?: string }

export class Runc {
  constructor(readonly root: string, readonly bin = "runc") {}

  /**
   * `runc run -d`: starts the container and returns once its process runs.
   * The container's stdio (and runc's own errors) go to logFile.
   */
  start(id: string, bundle: string, pidFile: string, logFile: string): Promise<void> {
    const fd = openSync(logFile, "a", 0o600);
    return new Promise<void>((resolve, reject) => {
      // Tied to the daemon like every host tool: if the daemon dies while runc
      // sets the container up, runc dies too (the next daemon removes the
      // half-made container as an orphan). A started container is never
      // affected: its init is runc's child, and the parent-death signal is not
      // inherited across fork; with -d runc exits once the container runs.
      const child = spawn(...tiedToParent(this.bin, ["--root", this.root, "run", "-d", "--pid-file", pidFile, "--bundle", bundle, id]), {
        env: TOOL_ENV,
        stdio: ["ignore", fd, fd],
        cwd: bundle,
      });
      child.on("error", (e) => reject(new Error(`runc: ${e.message}`)));
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`runc run ${id} failed (exit ${code})`))));
    }).finally(() => closeSync(fd));
  }

  async state(id: string): Promise<RuncState | null> {
    const r = await run(this.bin, ["--root", this.root, "state", id], { allowFail: true });
    if (r.code !== 0) return null;
    return JSON.parse(r.stdout) as RuncState;
  }

  async list(): Promise<RuncState[]> {
    const r = await run(this.bin, ["--root", this.root, "list", "-f", "json"], { allowFail: true });
    if (r.code !== 0) return [];
    return (JSON.parse(r.stdout || "null") as RuncState[] | null) ?? [];
  }

  async kill(id: string, signal = "KILL"): Promise<void> {
    await run(this.bin, ["--root", this.root, "kill", "--all", id, signal], { allowFail: true });
  }

  /** Removes the container (killing it if needed). Idempotent. */
  async delete(id: string): Promise<void> {
    const r = await run(this.bin, ["--root", this.root, "delete", "--force", id], { allowFail: true });
    if (r.code !== 0 && !/does not exist|not exist/.test(r.stderr)) {
      if (await this.state(id)) throw new Error(`runc delete ${id} failed: ${r.stderr.trim().split("\n").pop()}`);
    }
  }
}
