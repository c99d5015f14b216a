// `bhatti create|list|inspect|destroy`.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { clientOptions, intOption, repeatable, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import { withProgress } from "../progress.js";
import type { CreateSandbox } from "../../client/index.js";
import { parseSecretFlag } from "../../sandboxes/secret-files.js";
import { netOptions, networkSpec } from "./net.js";

export function parseEnv(pairs: string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf("=");
    if (i <= 0) throw new UsageError(`--env takes K=V (got ${JSON.stringify(p.split("=")[0])})`);
    env[p.slice(0, i)] = p.slice(i + 1);
  }
  return env;
}

function parseFile(spec: string): { path: string; content: string; mode?: number } {
  const m = /^([^:]+):(\/[^:]*)(?::([0-7]{3,4}))?$/.exec(spec);
  if (!m) throw new UsageError(`--file takes LOCAL:GUEST[:MODE] with an absolute GUEST path and an octal MODE (got ${JSON.stringify(spec)})`);
  return { path: m[2], content: readFileSync(m[1]).toString("base64"), ...(m[3] ? { mode: parseInt(m[3], 8) } : {}) };
}

interface CreateOpts {
  name?: string; cpus?: string; memory?: string; env?: string[]; secret?: string[]; file?: string[]; template?: string; redact?: boolean;
  image?: string; disk?: string; init?: string; engine?: string; url?: string; token?: string; json?: boolean;
  keepHot?: boolean; volume?: string[]; from?: string; egress?: string; allowHost?: string[]; allowCidr?: string[];
}

export function registerCreate(cmd: Command): void {
  clientOptions(netOptions(cmd)
    .requiredOption("--name <name>", "sandbox name, unique among yours")
    .option("--cpus <n>", "virtual CPUs (default 1, or the template's)")
    .option("--memory <mb>", "memory limit in MiB (default 512, or the template's)")
    .addOption(repeatable("--env <K=V>", "environment variable for every command (repeatable)"))
    .addOption(repeatable("--secret <NAME[:/PATH[:MODE]]>", "inject your secret NAME as an env var, or as a file at /PATH on a tmpfs (mode default 0400) (repeatable)"))
    .option("--redact", "replace this sandbox's secret values in all exec output with [REDACTED:NAME] (a guard against accidental logging, not a boundary)")
    .addOption(repeatable("--file <LOCAL:GUEST[:MODE]>", "copy a local file into the sandbox at boot (repeatable)"))
    .option("--template <t>", "start from a template (its secrets and env are merged)")
    .option("--image <name>", "guest image (default: the daemon's default, see `bhatti image list`)")
    .option("--disk <mb>", "size limit of the writable layer in MiB")
    .option("--init <cmd>", "shell command run once at boot")
    .option("--engine <ns|vm>", "isolation engine (default: the daemon's)")
    .option("--keep-hot", "never pause or stop this sandbox when idle")
    .addOption(repeatable("--volume <NAME:/PATH[:ro]>", "mount your volume NAME at /PATH (repeatable)"))
    .option("--from <snapshot|sandbox>", "fork: start from a snapshot or another sandbox's filesystem"))
    .action(run(async (o: CreateOpts) => {
      const spec: CreateSandbox = {
        name: o.name!,
        ...(o.cpus ? { cpus: intOption("cpus", o.cpus, 1) } : {}),
        ...(o.memory ? { memory_mb: intOption("memory", o.memory, 512) } : {}),
        ...(o.env ? { env: parseEnv(o.env) } : {}),
        ...(o.secret ? { secrets: o.secret.map(parseSecretFlag) } : {}),
        ...(o.redact ? { redact: true } : {}),
        ...(o.file ? { files: o.file.map(parseFile) } : {}),
        ...(o.template ? { template: o.template } : {}),
        ...(o.image ? { image: o.image } : {}),
        ...(o.disk ? { disk_mb: intOption("disk", o.disk, 0) } : {}),
        ...(o.init ? { init: o.init } : {}),
        ...(o.engine ? { engine: o.engine } : {}),
        ...(o.keepHot ? { keep_hot: true } : {}),
        ...(o.volume ? { volumes: o.volume } : {}),
        ...(o.from ? { from: o.from } : {}),
        ...(networkSpec(o) ? { network: networkSpec(o) } : {}),
      };
      const sb = await withProgress(`creating sandbox ${spec.name}`, () => clientFrom(o).createSandbox(spec));
      for (const w of sb.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      if (o.json) printJson(sb);
      else process.stdout.write(`created sandbox ${sb.name} (${sb.id}) on engine ${sb.engine}\n`);
      return 0;
    }));
}

export function registerList(cmd: Command): void {
  clientOptions(cmd).action(run(async (o: { url?: string; token?: string; json?: boolean }) => {
    const list = await clientFrom(o).listSandboxes();
    if (o.json) printJson(list);
    else printTable(["NAME", "ID", "ENGINE", "STATUS", "CPUS", "MEMORY_MB", "DISK_MB", "CREATED"], list.map((s) => [s.name, s.id, s.engine, s.idle ? `${s.status} (idle)` : s.status, s.cpus, s.memory_mb, s.disk_mb ?? "-", s.created_at]));
    return 0;
  }));
}

export function registerInspect(cmd: Command): void {
  clientOptions(cmd.argument("<sandbox>", "sandbox name or id")).action(run(async (ref: string, o: { url?: string; token?: string; json?: boolean }) => {
    const sb = await clientFrom(o).getSandbox(ref);
    if (o.json) printJson(sb);
    else for (const [k, v] of Object.entries(sb)) process.stdout.write(`${k.padEnd(15)} ${showField(v)}\n`);
    return 0;
  }));
}

/** inspect's one-line form of a field: lists joined, secret files as NAME:PATH:MODE, versions as NAME=vN. */
function showField(v: unknown): string {
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === "object" && x && "path" in x ? `${x.name}:${x.path}:${(x.mode as number).toString(8).padStart(4, "0")}` : String(x))).join(", ");
  }
  if (v && typeof v === "object") return Object.entries(v).map(([k, n]) => `${k}=v${n}`).join(", ");
  return v === null || v === undefined ? "" : String(v);
}

export function registerDestroy(cmd: Command): void {
  clientOptions(cmd.argument("<sandbox>", "sandbox name or id")).action(run(async (ref: string, o: { url?: string; token?: string; json?: boolean }) => {
    await clientFrom(o).destroySandbox(ref);
    if (o.json) printJson({ name: ref, destroyed: true });
    else process.stdout.write(`destroyed ${ref}\n`);
    return 0;
  }));
}
