// `bhatti stop|start|pause|resume SB` and `bhatti keep-hot SB on|off` (issue 14).
import type { Command } from "commander";
import { clientOptions, run, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";

const VERBS = { stop: "stopped", start: "started", pause: "paused", resume: "resumed" } as const;
type Verb = keyof typeof VERBS;
interface Conn { url?: string; token?: string; json?: boolean }

function lifecycle(verb: Verb) {
  return (cmd: Command): void => {
    clientOptions(cmd.argument("<sandbox>", "sandbox name or id")).action(run(async (ref: string, o: Conn) => {
      const sb = await clientFrom(o).lifecycle(ref, verb);
      if (o.json) printJson(sb);
      else process.stdout.write(`${VERBS[verb]} ${sb.name} (status ${sb.status})\n`);
      return 0;
    }));
  };
}

export const registerStop = lifecycle("stop");
export const registerStart = lifecycle("start");
export const registerPause = lifecycle("pause");
export const registerResume = lifecycle("resume");

export function registerKeepHot(cmd: Command): void {
  clientOptions(cmd.argument("<sandbox>", "sandbox name or id").argument("<on|off>", "on: never paused or stopped when idle"))
    .action(run(async (ref: string, v: string, o: Conn) => {
      if (v !== "on" && v !== "off") throw new UsageError("keep-hot takes on or off");
      const sb = await clientFrom(o).setKeepHot(ref, v === "on");
      if (o.json) printJson(sb);
      else process.stdout.write(`${sb.name}: keep-hot ${sb.keep_hot ? "on (never paused or stopped when idle)" : "off"}\n`);
      return 0;
    }));
}
