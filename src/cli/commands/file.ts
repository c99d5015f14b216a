// `bhatti file read|write|ls`: files inside a sandbox, as its user (uid 1000).
import { readFileSync } from "node:fs";
import { parse, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

const USAGE = "bhatti file read SANDBOX PATH | write SANDBOX PATH [LOCAL] [--mode 0644] | ls SANDBOX PATH  [--json]";

export async function fileCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "read": {
      const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [2, 2] });
      const data = await clientFrom(values).readFile(positionals[0], positionals[1]);
      if (values.json) printJson({ path: positionals[1], size: data.length, content_base64: data.toString("base64") });
      else process.stdout.write(data);
      return 0;
    }
    case "write": {
      const { values, positionals } = parse(rest, { mode: { type: "string" } }, { usage: USAGE, positionals: [2, 3] });
      if (values.mode !== undefined && !/^[0-7]{3,4}$/.test(values.mode)) throw new UsageError(`--mode must be octal, e.g. 0644\nusage: ${USAGE}`);
      let data: Buffer;
      if (positionals[2]) data = readFileSync(positionals[2]);
      else {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        data = Buffer.concat(chunks);
      }
      const res = await clientFrom(values).writeFile(positionals[0], positionals[1], data, values.mode ? parseInt(values.mode, 8) : undefined);
      if (values.json) printJson(res);
      else process.stdout.write(`wrote ${res.size} bytes to ${res.path}\n`);
      return 0;
    }
    case "ls": {
      const { values, positionals } = parse(rest, {}, { usage: USAGE, positionals: [2, 2] });
      const list = await clientFrom(values).listFiles(positionals[0], positionals[1]);
      if (values.json) printJson(list);
      else printTable(["MODE", "UID", "GID", "SIZE", "MTIME", "NAME"], list.map((e) => [e.mode.toString(8).padStart(4, "0"), e.uid, e.gid, e.size, e.mtime, e.name + (e.type === "dir" ? "/" : "")]));
      return 0;
    }
    default:
      throw new UsageError(`usage: ${USAGE}`);
  }
}
