// `bhatti file read|write|ls`: files inside a sandbox, as its user (uid 1000).
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { clientOptions, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

type Conn = { url?: string; token?: string; json?: boolean };

export function register(cmd: Command): void {
  clientOptions(cmd.command("read").description("print a file's bytes on stdout")
    .argument("<sandbox>", "sandbox name or id").argument("<path>", "absolute path in the sandbox"))
    .action(run(async (ref: string, path: string, o: Conn) => {
      const data = await clientFrom(o).readFile(ref, path);
      if (o.json) printJson({ path, size: data.length, content_base64: data.toString("base64") });
      else process.stdout.write(data);
      return 0;
    }));
  clientOptions(cmd.command("write").description("write a file from LOCAL or stdin (replaced atomically)")
    .argument("<sandbox>", "sandbox name or id").argument("<path>", "absolute path in the sandbox")
    .argument("[local]", "local file to upload (default: stdin)")
    .option("--mode <octal>", "file mode, e.g. 0644"))
    .action(run(async (ref: string, path: string, local: string | undefined, o: Conn & { mode?: string }) => {
      if (o.mode !== undefined && !/^[0-7]{3,4}$/.test(o.mode)) throw new UsageError("--mode must be octal, e.g. 0644");
      let data: Buffer;
      if (local) data = readFileSync(local);
      else {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        data = Buffer.concat(chunks);
      }
      const res = await clientFrom(o).writeFile(ref, path, data, o.mode ? parseInt(o.mode, 8) : undefined);
      if (o.json) printJson(res);
      else process.stdout.write(`wrote ${res.size} bytes to ${res.path}\n`);
      return 0;
    }));
  clientOptions(cmd.command("ls").description("list a directory (or show one file)")
    .argument("<sandbox>", "sandbox name or id").argument("<path>", "absolute path in the sandbox"))
    .action(run(async (ref: string, path: string, o: Conn) => {
      const list = await clientFrom(o).listFiles(ref, path);
      if (o.json) printJson(list);
      else printTable(["MODE", "UID", "GID", "SIZE", "MTIME", "NAME"], list.map((e) => [e.mode.toString(8).padStart(4, "0"), e.uid, e.gid, e.size, e.mtime, e.name + (e.type === "dir" ? "/" : "")]));
      return 0;
    }));
}
