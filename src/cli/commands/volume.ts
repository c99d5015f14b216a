// `bhatti volume create NAME --size MB | list | delete NAME` (issue 14).
import { parse, intOption, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

const USAGE = "bhatti volume create NAME --size MB | list | delete NAME [--json]";

export async function volumeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "create") {
    const { values, positionals } = parse(rest, { size: { type: "string" } }, { usage: USAGE, positionals: [1, 1] });
    if (!values.size) throw new UsageError(`--size is required\nusage: ${USAGE}`);
    const v = await clientFrom(values).createVolume(positionals[0], intOption("size", values.size, 0));
    if (values.json) printJson(v);
    else process.stdout.write(`created volume ${v.name} (${v.size_mb} MiB)\n`);
    return 0;
  }
  if (sub === "list") {
    const { values } = parse(rest, {}, { usage: USAGE });
    const list = await clientFrom(values).listVolumes();
    if (values.json) printJson(list);
    else printTable(["NAME", "SIZE_MB", "ATTACHED_TO", "CREATED"], list.map((v) => [v.name, v.size_mb, v.attached_to ?? "-", v.created_at]));
    return 0;
  }
  if (sub === "delete") {
    const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [1, 1] });
    await clientFrom(values).deleteVolume(positionals[0]);
    if (values.json) printJson({ name: positionals[0], deleted: true });
    else process.stdout.write(`deleted volume ${positionals[0]}\n`);
    return 0;
  }
  throw new UsageError(`usage: ${USAGE}`);
}
