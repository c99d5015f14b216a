// `bhatti template create|list|delete`.
import { parse, intOption, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import { parseEnv } from "./sandbox.js";
import { NET_OPTIONS, networkSpec } from "./net.js";

const USAGE = "bhatti template create --name N [--image minimal] [--cpus 1] [--memory 512] [--env K=V]... [--secret NAME]... [--egress E] [--allow-host H]... [--allow-cidr C]... | list | delete T  [--json]";

export async function templateCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "create": {
      const { values } = parse(rest, {
        name: { type: "string" }, image: { type: "string" }, cpus: { type: "string" }, memory: { type: "string" },
        env: { type: "string", multiple: true }, secret: { type: "string", multiple: true }, ...NET_OPTIONS,
      }, { usage: USAGE });
      if (!values.name) throw new UsageError(`--name is required\nusage: ${USAGE}`);
      const t = await clientFrom(values).createTemplate({
        name: values.name,
        ...(values.image ? { image: values.image } : {}),
        ...(values.cpus ? { cpus: intOption("cpus", values.cpus, 1) } : {}),
        ...(values.memory ? { memory_mb: intOption("memory", values.memory, 512) } : {}),
        ...(values.env ? { env: parseEnv(values.env, USAGE) } : {}),
        ...(values.secret ? { secrets: values.secret } : {}),
        ...(networkSpec(values) ? { network: networkSpec(values) } : {}),
      });
      if (values.json) printJson(t);
      else process.stdout.write(`created template ${t.name} (${t.id})\n`);
      return 0;
    }
    case "list": {
      const { values } = parse(rest, {}, { usage: USAGE });
      const list = await clientFrom(values).listTemplates();
      if (values.json) printJson(list);
      else printTable(["NAME", "ID", "IMAGE", "CPUS", "MEMORY_MB", "SECRETS", "ENV"],
        list.map((t) => [t.name, t.id, t.image, t.cpus, t.memory_mb, t.secrets.join(",") || "-", Object.keys(t.env).join(",") || "-"]));
      return 0;
    }
    case "delete": {
      const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [1, 1] });
      await clientFrom(values).deleteTemplate(positionals[0]);
      if (values.json) printJson({ name: positionals[0], deleted: true });
      else process.stdout.write(`deleted template ${positionals[0]}\n`);
      return 0;
    }
    default:
      throw new UsageError(`usage: ${USAGE}`);
  }
}
