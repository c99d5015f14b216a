// `bhatti create|list|inspect|destroy`.
import { readFileSync } from "node:fs";
import { parse, intOption, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import type { CreateSandbox } from "../../client/index.js";
import { NET_OPTIONS, networkSpec } from "./net.js";

const CREATE_USAGE = "bhatti create --name N [--cpus 1] [--memory 512] [--env K=V]... [--secret NAME]... [--file LOCAL:GUEST[:MODE]]... [--template T] [--image NAME] [--disk MB] [--init CMD] [--engine ns|vm] [--egress public|deny|none] [--allow-host H]... [--allow-cidr C]... [--json]";

export const SPEC_OPTIONS = {
  name: { type: "string" },
  cpus: { type: "string" },
  memory: { type: "string" },
  env: { type: "string", multiple: true },
  secret: { type: "string", multiple: true },
  engine: { type: "string" },
} as const;

export function parseEnv(pairs: string[] | undefined, usage: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf("=");
    if (i <= 0) throw new UsageError(`--env takes K=V (got ${JSON.stringify(p.split("=")[0])})\nusage: ${usage}`);
    env[p.slice(0, i)] = p.slice(i + 1);
  }
  return env;
}

function parseFile(spec: string): { path: string; content: string; mode?: number } {
  const m = /^([^:]+):(\/[^:]*)(?::([0-7]{3,4}))?$/.exec(spec);
  if (!m) throw new UsageError(`--file takes LOCAL:GUEST[:MODE] with an absolute GUEST path and an octal MODE (got ${JSON.stringify(spec)})\nusage: ${CREATE_USAGE}`);
  return { path: m[2], content: readFileSync(m[1]).toString("base64"), ...(m[3] ? { mode: parseInt(m[3], 8) } : {}) };
}

export async function createCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...SPEC_OPTIONS, file: { type: "string", multiple: true }, template: { type: "string" }, image: { type: "string" }, disk: { type: "string" }, init: { type: "string" }, ...NET_OPTIONS }, { usage: CREATE_USAGE });
  if (!values.name) throw new UsageError(`--name is required\nusage: ${CREATE_USAGE}`);
  const spec: CreateSandbox = {
    name: values.name,
    ...(values.cpus ? { cpus: intOption("cpus", values.cpus, 1) } : {}),
    ...(values.memory ? { memory_mb: intOption("memory", values.memory, 512) } : {}),
    ...(values.env ? { env: parseEnv(values.env, CREATE_USAGE) } : {}),
    ...(values.secret ? { secrets: values.secret } : {}),
    ...(values.file ? { files: values.file.map(parseFile) } : {}),
    ...(values.template ? { template: values.template } : {}),
    ...(values.image ? { image: values.image } : {}),
    ...(values.disk ? { disk_mb: intOption("disk", values.disk, 0) } : {}),
    ...(values.init ? { init: values.init } : {}),
    ...(values.engine ? { engine: values.engine } : {}),
    ...(networkSpec(values) ? { network: networkSpec(values) } : {}),
  };
  const sb = await clientFrom(values).createSandbox(spec);
  for (const w of sb.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
  if (values.json) printJson(sb);
  else process.stdout.write(`created sandbox ${sb.name} (${sb.id}) on engine ${sb.engine}\n`);
  return 0;
}

export async function listCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {}, { usage: "bhatti list [--json]" });
  const list = await clientFrom(values).listSandboxes();
  if (values.json) printJson(list);
  else printTable(["NAME", "ID", "ENGINE", "STATUS", "CPUS", "MEMORY_MB", "CREATED"], list.map((s) => [s.name, s.id, s.engine, s.status, s.cpus, s.memory_mb, s.created_at]));
  return 0;
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, { usage: "bhatti inspect SANDBOX [--json]", positionals: [1, 1] });
  const sb = await clientFrom(values).getSandbox(positionals[0]);
  if (values.json) printJson(sb);
  else {
    for (const [k, v] of Object.entries(sb)) process.stdout.write(`${k.padEnd(12)} ${Array.isArray(v) ? v.join(", ") : v ?? ""}\n`);
  }
  return 0;
}

export async function destroyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, { usage: "bhatti destroy SANDBOX [--json]", positionals: [1, 1] });
  await clientFrom(values).destroySandbox(positionals[0]);
  if (values.json) printJson({ name: positionals[0], destroyed: true });
  else process.stdout.write(`destroyed ${positionals[0]}\n`);
  return 0;
}
