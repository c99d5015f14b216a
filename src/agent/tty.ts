// Pseudo-terminals. Node has no pty API; we run the command under `script`
// (util-linux, or a busybox built with the applet) when the image has it.
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { spawn } from "node:child_process";
import { GUEST } from "../protocol/agent.js";
import { asUser } from "./creds.js";

let scriptPath: string | null | undefined;

/** Path of a usable `script`, or null. */
export function findScript(): string | null {
  if (scriptPath !== undefined) return scriptPath;
  scriptPath = null;
  for (const p of ["/usr/bin/script", "/bin/script"]) if (existsSync(p)) return (scriptPath = p);
  return scriptPath;
}

/** POSIX sh quoting of one word. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** argv that runs `cmd` on a fresh pty of the given size, its output on our stdout. */
export function ttyArgv(script: string, cmd: string[], rows?: number, cols?: number): string[] {
  const size = rows && cols ? `stty rows ${rows | 0} cols ${cols | 0} 2>/dev/null; ` : "";
  return [script, "-q", "-e", "-c", `${size}exec ${cmd.map(shQuote).join(" ")}`, "/dev/null"];
}

/**
 * Best effort: set the window size of the pty the child of `scriptPid` runs on
 * (the kernel then sends SIGWINCH to its foreground process group). /proc of
 * uid 1000's processes is read as uid 1000: in an ns sandbox lohar has no
 * CAP_SYS_PTRACE, and root without it may not read another uid's fd links.
 */
export function resizeTty(scriptPid: number, rows: number, cols: number, env: Record<string, string>): void {
  try {
    const children = asUser(() => readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, "utf8")).trim().split(/\s+/);
    for (const c of children) {
      if (!/^\d+$/.test(c)) continue;
      const tty = asUser(() => readlinkSync(`/proc/${c}/fd/0`));
      if (!tty.startsWith("/dev/pts/")) continue;
      const p = spawn("stty", ["-F", tty, "rows", String(rows | 0), "cols", String(cols | 0)], { env, stdio: "ignore", uid: GUEST.user.uid, gid: GUEST.user.gid });
      p.on("error", () => {});
      return;
    }
  } catch {
    // best effort
  }
}
