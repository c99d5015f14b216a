// `bhatti secret set|list|delete`. set reads the value from stdin when it is not
// given, so it never has to appear in shell history or in argv.
import { readFileSync } from "node:fs";
import { parse, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

const USAGE = "bhatti secret set NAME [VALUE | --from-file PATH] | list | delete NAME  [--json]";

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) process.stderr.write("value (end with Ctrl-D): ");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export async function secretCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "set": {
      const { values, positionals } = parse(rest, { "from-file": { type: "string" } }, { usage: USAGE, positionals: [1, 2] });
      const [name, given] = positionals;
      if (given !== undefined && values["from-file"]) throw new UsageError(`give the value either as an argument or with --from-file, not both\nusage: ${USAGE}`);
      let value: string;
      if (given !== undefined) value = given;
      else {
        const bytes = values["from-file"] ? readFileSync(values["from-file"]) : stripOneNewline(await readStdin());
        try { value = utf8.decode(bytes); } catch { throw new Error("the value must be valid UTF-8"); }
      }
      const meta = await clientFrom(values).setSecret(name, value);
      if (values.json) printJson(meta);
      else process.stdout.write(`secret ${meta.name} set: version ${meta.version} (updated ${meta.updated_at})\n`);
      return 0;
    }
    case "list": {
      const { values } = parse(rest, {}, { usage: USAGE });
      const list = await clientFrom(values).listSecrets();
      if (values.json) printJson(list);
      else printTable(["NAME", "VERSION", "CREATED", "UPDATED"], list.map((s) => [s.name, s.version, s.created_at, s.updated_at]));
      return 0;
    }
    case "delete": {
      const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [1, 1] });
      await clientFrom(values).deleteSecret(positionals[0]);
      if (values.json) printJson({ name: positionals[0], deleted: true });
      else process.stdout.write(`secret ${positionals[0]} deleted\n`);
      return 0;
    }
    default:
      throw new UsageError(`usage: ${USAGE}`);
  }
}

function stripOneNewline(b: Buffer): Buffer {
  if (b.length && b[b.length - 1] === 0x0a) {
    return b.length > 1 && b[b.length - 2] === 0x0d ? b.subarray(0, -2) : b.subarray(0, -1);
  }
  return b;
}
