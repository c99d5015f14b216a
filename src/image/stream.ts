// Runs a long host tool of the image builder (mmdebstrap) and passes each
// line it writes to the log as it comes, keeping only a bounded tail for the
// error message. Same cleared environment as every other builder tool, and
// tied to the builder's life like them (src/util/run.ts): mmdebstrap and
// everything it forks (apt, dpkg) die with the process that started it.
import { spawn } from "node:child_process";
import { TOOL_ENV, treeTiedToParent } from "../util/run.js";
import { toolEnv } from "./run.js";

const TAIL_LINES = 20;
const MAX_LINE = 4096;

export function runStreaming(cmd: string, args: string[], onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(...treeTiedToParent(cmd, args), { env: { ...TOOL_ENV, ...toolEnv() }, stdio: ["ignore", "pipe", "pipe"] });
    // First: a spawn that fails has no stdio, and its 'error' comes on the next tick.
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    const tail: string[] = [];
    const splitter = (): ((b: Buffer) => void) => {
      let partial = "";
      return (b: Buffer) => {
        partial += b.toString("utf8");
        const lines = partial.split("\n");
        partial = lines.pop()!.slice(-MAX_LINE); // an endless line stays bounded
        for (const raw of lines) {
          const line = raw.trimEnd().slice(0, MAX_LINE);
          if (!line) continue;
          tail.push(line);
          if (tail.length > TAIL_LINES) tail.shift();
          onLine(line);
        }
      };
    };
    child.stdout?.on("data", splitter());
    child.stderr?.on("data", splitter());
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      reject(new Error(`${cmd} failed (${signal ?? `exit ${code}`})${tail.length ? `:\n${tail.slice(-8).join("\n")}` : ""}`));
    });
  });
}
