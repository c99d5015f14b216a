// `bhatti template create|list|inspect|delete`.
import type { Command } from "commander";
import { clientOptions, intOption, repeatable, run } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import { parseEnv } from "./sandbox.js";
import { parseSecretFlag } from "../../sandboxes/secret-files.js";
import { netOptions, networkSpec, type NetOpts } from "./net.js";

type Conn = { url?: string; token?: string; json?: boolean };
interface CreateOpts extends Conn, NetOpts { name?: string; image?: string; cpus?: string; memory?: string; env?: string[]; secret?: string[] }

export function register(cmd: Command): void {
  clientOptions(netOptions(cmd.command("create")).description("create a template")
    .requiredOption("--name <name>", "template name, unique among yours")
    .option("--image <name>", "guest image (default: the daemon's default)")
    .option("--cpus <n>", "virtual CPUs (default 1)")
    .option("--memory <mb>", "memory limit in MiB (default 512)")
    .addOption(repeatable("--env <K=V>", "environment variable (repeatable)"))
    .addOption(repeatable("--secret <NAME[:/PATH[:MODE]]>", "secret to inject in its sandboxes, as env or as a file at /PATH (repeatable; may be set later)")))
    .action(run(async (o: CreateOpts) => {
      const client = clientFrom(o);
      const t = await client.createTemplate({
        name: o.name!,
        ...(o.image ? { image: o.image } : {}),
        ...(o.cpus ? { cpus: intOption("cpus", o.cpus, 1) } : {}),
        ...(o.memory ? { memory_mb: intOption("memory", o.memory, 512) } : {}),
        ...(o.env ? { env: parseEnv(o.env) } : {}),
        ...(o.secret ? { secrets: o.secret.map(parseSecretFlag) } : {}),
        ...(networkSpec(o) ? { network: networkSpec(o) } : {}),
      });
      const named = [...t.secrets, ...(t.secret_files ?? []).map((f) => f.name)];
      if (named.length) {
        const have = new Set((await client.listSecrets()).map((s) => s.name));
        const missing = [...new Set(named)].filter((s) => !have.has(s));
        if (missing.length) process.stderr.write(`warning: you have no secret named ${missing.join(", ")} yet; set ${missing.length > 1 ? "them" : "it"} (bhatti secret set NAME) before creating sandboxes from ${t.name}\n`);
      }
      if (o.json) printJson(t);
      else process.stdout.write(`created template ${t.name} (${t.id})\n`);
      return 0;
    }));
  clientOptions(cmd.command("list").description("list your templates"))
    .action(run(async (o: Conn) => {
      const list = await clientFrom(o).listTemplates();
      if (o.json) printJson(list);
      else printTable(["NAME", "ID", "IMAGE", "CPUS", "MEMORY_MB", "SECRETS", "ENV"],
        list.map((t) => [t.name, t.id, t.image, t.cpus, t.memory_mb, [...t.secrets, ...(t.secret_files ?? []).map((f) => `${f.name}:${f.path}`)].join(",") || "-", Object.keys(t.env).join(",") || "-"]));
      return 0;
    }));
  clientOptions(cmd.command("inspect").description("show one template").argument("<template>", "template name or id"))
    .action(run(async (ref: string, o: Conn) => {
      const t = await clientFrom(o).getTemplate(ref);
      if (o.json) printJson(t);
      else {
        for (const [k, v] of Object.entries(t)) {
          const shown = Array.isArray(v) ? v.join(", ") : v && typeof v === "object" ? Object.entries(v).map(([a, b]) => `${a}=${b}`).join(" ") : v;
          process.stdout.write(`${k.padEnd(10)} ${shown ?? ""}\n`);
        }
      }
      return 0;
    }));
  clientOptions(cmd.command("delete").description("delete a template").argument("<template>", "template name or id"))
    .action(run(async (ref: string, o: Conn) => {
      await clientFrom(o).deleteTemplate(ref);
      if (o.json) printJson({ name: ref, deleted: true });
      else process.stdout.write(`deleted template ${ref}\n`);
      return 0;
    }));
}
