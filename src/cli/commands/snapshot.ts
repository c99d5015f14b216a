// `bhatti snapshot create SB [--name N] | list | delete NAME` (issue 14). Fork: `bhatti create --name N --from SNAPSHOT|SB`.
import { parse, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

const USAGE = "bhatti snapshot create SANDBOX [--name N] | list | delete NAME [--json]";

export async function snapshotCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "create") {
    const { values, positionals } = parse(rest, { name: { type: "string" } }, { usage: USAGE, positionals: [1, 1] });
    const s = await clientFrom(values).createSnapshot(positionals[0], values.name);
    if (values.json) printJson(s);
    else process.stdout.write(`created snapshot ${s.name} of ${s.sandbox}\n`);
    return 0;
  }
  if (sub === "list") {
    const { values } = parse(rest, {}, { usage: USAGE });
    const list = await clientFrom(values).listSnapshots();
    if (values.json) printJson(list);
    else printTable(["NAME", "SANDBOX", "ENGINE", "IMAGE", "CREATED"], list.map((s) => [s.name, s.sandbox, s.engine, s.image, s.created_at]));
    return 0;
  }
  if (sub === "delete") {
    const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [1, 1] });
    await clientFrom(values).deleteSnapshot(positionals[0]);
    if (values.json) printJson({ name: positionals[0], deleted: true });
    else process.stdout.write(`deleted snapshot ${positionals[0]}\n`);
    return 0;
  }
  throw new UsageError(`usage: ${USAGE}`);
}
