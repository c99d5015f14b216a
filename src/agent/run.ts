// Run a helper program (busybox hostname/mount/umount) with an empty env and
// wait for it. Its argv never holds a config value other than the hostname.
import { spawn } from "node:child_process";

export function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    const child = spawn(file, args, { env: {}, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => { if (stderr.length < 500) stderr += d; });
    child.on("error", (e) => reject(new Error(`${file}: ${(e as NodeJS.ErrnoException).code ?? "spawn failed"}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args[0] ?? ""} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}
