// `bhatti file read|write|ls`: files inside a sandbox, as its user (uid 1000).
import { readFileSync, statSync } from "node:fs";
import { posix } from "node:path";
import type { Command } from "commander";
import { clientOptions, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";
import { MAX_FILE_BYTES } from "../../limits.js";

type Conn = { url?: string; token?: string; json?: boolean };

/** --parents: a one-entry tar through the archive route, which creates the directories on the way. */
async function writeWithParents(client: ReturnType<typeof clientFrom>, ref: string, path: string, data: Buffer, mode?: number): Promise<{ path: string; size: number }> {
  if (!path.startsWith("/") || path.endsWith("/")) throw new UsageError("the path must be absolute and name a file");
  const tar = await import("tar-stream");
  const pack = tar.pack();
  pack.entry({ name: posix.basename(path), size: data.length, mode: mode ?? 0o644, type: "file" }, data, (err) => { if (err) pack.destroy(err); else pack.finalize(); });
  await client.putArchive(ref, posix.dirname(path), pack as unknown as AsyncIterable<Uint8Array>);
  return { path, size: data.length };
}

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
    .option("--mode <octal>", "file mode, e.g. 0644")
    .option("-p, --parents", "create missing parent directories (owned by the sandbox user)"))
    .action(run(async (ref: string, path: string, local: string | undefined, o: Conn & { mode?: string; parents?: boolean }) => {
      if (o.mode !== undefined && !/^[0-7]{3,4}$/.test(o.mode)) throw new UsageError("--mode must be octal, e.g. 0644");
      const tooBig = (n: number) => new Error(`${local ?? "stdin"} is ${(n / 1048576).toFixed(1)} MiB; a file written through the API may be at most ${MAX_FILE_BYTES >> 20} MiB (use bhatti cp for trees)`);
      let data: Buffer;
      if (local) {
        const size = statSync(local).size; // refused before anything is read or sent
        if (size > MAX_FILE_BYTES) throw tooBig(size);
        data = readFileSync(local);
      } else {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of process.stdin) {
          n += (c as Buffer).length;
          if (n > MAX_FILE_BYTES) throw tooBig(n);
          chunks.push(c as Buffer);
        }
        data = Buffer.concat(chunks);
      }
      const mode = o.mode ? parseInt(o.mode, 8) : undefined;
      const client = clientFrom(o);
      const res = o.parents ? await writeWithParents(client, ref, path, data, mode) : await client.writeFile(ref, path, data, mode);
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
