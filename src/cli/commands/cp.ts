// `bhatti cp LOCAL SB:PATH` and `bhatti cp SB:PATH LOCAL`, as `docker cp`:
// files and directory trees travel as a tar stream through the API
// (GET/PUT /sandboxes/:id/archive). Copying to an existing directory puts the
// source inside it; to a path that does not exist, copies under that name.
// Modes are kept; inside the sandbox everything belongs to its user (uid 1000).
// What comes out of a sandbox is untrusted: entries that are absolute, contain
// `..`, go through a symlink or are special files are refused (src/archive).
import { lstatSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, posix, resolve } from "node:path";
import { Readable } from "node:stream";
import type { Command } from "commander";
import { clientOptions, run, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";
import { withProgress } from "../progress.js";
import { MAX_ARCHIVE_BYTES } from "../../limits.js";

type Conn = { url?: string; token?: string; json?: boolean };
const REMOTE = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$/;

function remote(arg: string): { ref: string; path: string } | null {
  const m = REMOTE.exec(arg);
  if (!m) return null;
  if (!m[2].startsWith("/")) throw new UsageError(`${JSON.stringify(arg)}: the path in a sandbox must be absolute (SANDBOX:/path)`);
  return { ref: m[1], path: m[2] };
}

/** The size of `path` as a tar stream (headers and 512-byte blocks), counted before anything is sent. */
function tarSize(path: string): number {
  const st = lstatSync(path);
  let n = 512 + (st.isFile() ? Math.ceil(st.size / 512) * 512 : 0);
  if (st.isDirectory()) for (const e of readdirSync(path)) n += tarSize(join(path, e));
  return n;
}

export function register(cmd: Command): void {
  clientOptions(cmd
    .argument("<src>", "LOCAL path, or SANDBOX:/path")
    .argument("<dest>", "SANDBOX:/path, or LOCAL path (- writes the tar stream to stdout)"))
    .addHelpText("after", "\nExamples:\n  bhatti cp ./src box:/home/lohar/   # into an existing directory\n  bhatti cp box:/etc/hosts hosts.txt  # to a new name\n" +
      `The tar stream of an upload may be at most ${MAX_ARCHIVE_BYTES >> 20} MiB.`)
    .action(run(async (src: string, dest: string, o: Conn) => {
      const from = remote(src);
      const to = remote(dest);
      if (!!from === !!to) throw new UsageError("copy between a local path and a sandbox: exactly one of SRC and DEST is SANDBOX:/path");
      const client = clientFrom(o);
      if (to) {
        const local = resolve(src);
        let size: number;
        try { size = tarSize(local); } catch (e) { throw new Error(`${src}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
        if (size + 1024 > MAX_ARCHIVE_BYTES) throw new Error(`${src} is ${(size / 1048576).toFixed(1)} MiB as a tar stream; bhatti cp uploads at most ${MAX_ARCHIVE_BYTES >> 20} MiB`);
        const isDir = lstatSync(local).isDirectory();
        const there = to.path.endsWith("/") ? { type: "dir" } : await client.statPath(to.ref, to.path);
        let dir: string, rename: string | undefined;
        if (there?.type === "dir") dir = to.path; // into it
        else {
          if (there && isDir) throw new Error(`${dest} exists and is not a directory; cannot copy a directory onto it`);
          dir = posix.dirname(to.path);
          rename = posix.basename(to.path);
        }
        const { packPath } = await import("../../archive/pack.js");
        const res = await withProgress(`copying ${src}`, () => client.putArchive(to.ref, dir, packPath(local, { name: basename(local) }) as unknown as AsyncIterable<Uint8Array>, rename));
        if (o.json) printJson({ from: src, to: dest, bytes: res.size });
        else process.stdout.write(`copied ${src} to ${dest}\n`);
        return 0;
      }
      const body = Readable.fromWeb((await client.getArchive(from!.ref, from!.path)) as import("node:stream/web").ReadableStream);
      if (dest === "-") {
        body.pipe(process.stdout);
        await new Promise<void>((r, j) => { body.on("end", () => r()); body.on("error", j); });
        return 0;
      }
      const local = resolve(dest);
      let root: string, rename: string | undefined;
      let st = null;
      try { st = statSync(local); } catch { /* does not exist */ }
      if (st?.isDirectory()) root = local;
      else { root = dirname(local); rename = basename(local); }
      const { extractTar } = await import("../../archive/extract.js");
      const r = await withProgress(`copying ${src}`, () => extractTar(body as AsyncIterable<Buffer>, { root, ...(rename ? { rename } : {}) }));
      if (o.json) printJson({ from: src, to: dest, entries: r.entries, bytes: r.bytes });
      else process.stdout.write(`copied ${src} to ${dest}\n`);
      return 0;
    }));
}
