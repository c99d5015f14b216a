// Thin wrapper over the runc CLI (Debian's 1.1.x). Every call uses this
// daemon's own state root so several daemons never see each other's containers.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { TOOL_ENV, run } from "../runtime.js";
import { tiedScript, tiedToParent } from "../../util/run.js";

export interface RuncState { id: string; pid: number; status: string; bundle?: string }

/** A host tool run in the host's namespace before runc (mount, install, mkdir): its arguments, and the directory to run it in. */
export interface HostMount { args: string[]; cwd?: string; cmd?: "mount" | "install" | "mkdir" }

/** One shell word, quoted (paths and mount options only; never a value). */
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class Runc {
  constructor(readonly root: string, readonly bin = "runc") {}

  /**
   * `runc run -d`: starts the container and returns once its process runs.
   * The container's stdio (and runc's own errors) go to logFile.
   *
   * drive: the nameless config drive (an fd). It is loop-mounted only inside
   * a private mount namespace made for this one runc run (unshare(1), then
   * mount(8) on /proc/self/fd/3, then exec runc), so the bundle's bind of
   * drive.mountPoint sees it and the host never does: once runc exits, the
   * only mount of it is the sandbox's own bind, which lohar removes at boot
   * (the loop device then detaches itself). If this daemon dies at any
   * moment, nothing holding the drive is visible on the host.
   */
  start(id: string, bundle: string, pidFile: string, logFile: string, drive?: { fd: number; mountPoint: string; options: string }, hostMounts: HostMount[] = []): Promise<void> {
    const fd = openSync(logFile, "a", 0o600);
    const runcArgs = ["--root", this.root, "run", "-d", "--pid-file", pidFile, "--bundle", bundle, id];
    const [cmd, args]: [string, string[]] = drive
      ? ["unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
        'mount -t ext4 -o "$1" /proc/self/fd/3 "$2" || exit 125; exec 3<&-; shift 2; exec "$@"',
        "sh", `loop,${drive.options}`, drive.mountPoint, this.bin, ...runcArgs]]
      : [this.bin, runcArgs];
    // hostMounts: mounts the container needs, made in the host's namespace by
    // the same process before it goes on to runc (one spawn fewer each).
    const script = hostMounts.map((m) => `${m.cwd ? `cd ${shq(m.cwd)} || exit 124; ` : ""}${m.cmd ?? "mount"} ${m.args.map(shq).join(" ")} || exit 124`)
      .concat([`cd ${shq(bundle)} || exit 124`, 'exec "$@"']).join("\n");
    return new Promise<void>((resolve, reject) => {
      // Tied to the daemon like every host tool: if the daemon dies while runc
      // sets the container up, runc dies too (the next daemon removes the
      // half-made container as an orphan). A started container is never
      // affected: its init is runc's child, and the parent-death signal is not
      // inherited across fork; with -d runc exits once the container runs.
      const child = spawn(...(hostMounts.length ? tiedScript(script, [cmd, ...args]) : tiedToParent(cmd, args)), {
        env: TOOL_ENV,
        stdio: ["ignore", fd, fd, ...(drive ? [drive.fd] : [])],
        cwd: bundle,
      });
      child.on("error", (e) => reject(new Error(`runc: ${e.message}`)));
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(
        code === 125 ? `mounting the config drive for runc run ${id} failed`
          : code === 124 ? `mounting the sandbox's disk, root or agent dir for runc run ${id} failed`
            : `runc run ${id} failed (exit ${code})`))));
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
