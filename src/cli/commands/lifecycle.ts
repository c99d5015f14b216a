// `bhatti stop|start|pause|resume SB` and `bhatti keep-hot SB on|off` (issue 14).
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";

const VERBS = { stop: "stopped", start: "started", pause: "paused", resume: "resumed" } as const;
type Verb = keyof typeof VERBS;

function lifecycle(verb: Verb) {
  return async (argv: string[]): Promise<number> => {
    const { values, positionals } = parse(argv, {}, { usage: `bhatti ${verb} SANDBOX [--json]`, positionals: [1, 1] });
    const sb = await clientFrom(values).lifecycle(positionals[0], verb);
    if (values.json) printJson(sb);
    else process.stdout.write(`${VERBS[verb]} ${sb.name} (status ${sb.status})\n`);
    return 0;
  };
}

export const stopCommand = lifecycle("stop");
export const startCommand = lifecycle("start");
export const pauseCommand = lifecycle("pause");
export const resumeCommand = lifecycle("resume");

export async function keepHotCommand(argv: string[]): Promise<number> {
  const usage = "bhatti keep-hot SANDBOX on|off [--json]";
  const { values, positionals } = parse(argv, {}, { usage, positionals: [2, 2] });
  if (positionals[1] !== "on" && positionals[1] !== "off") throw new UsageError(`keep-hot takes on or off\nusage: ${usage}`);
  const sb = await clientFrom(values).setKeepHot(positionals[0], positionals[1] === "on");
  if (values.json) printJson(sb);
  else process.stdout.write(`${sb.name}: keep-hot ${sb.keep_hot ? "on (never paused or stopped when idle)" : "off"}\n`);
  return 0;
}
