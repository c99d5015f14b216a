// Packs a file or a directory tree into a tar stream, named from its last
// path component (or `name`). Symbolic links are stored as links, never
// followed; other special files are skipped. `wrap` runs each synchronous
// filesystem call (lohar: as the sandbox user). Reading follows the consumer:
// a file is read only as fast as the tar stream is taken.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import * as tar from "tar-stream";
import { MAX_ENTRIES, topName } from "./rules.js";
import type { Wrap } from "./extract.js";

const CHUNK = 64 * 1024;

export interface PackOptions { wrap?: Wrap; name?: string; skip?: (abs: string) => boolean }

/** The tar stream of `path`. Errors (a file that vanished, no permission) end it with an error. */
export function packPath(path: string, opts: PackOptions = {}): tar.Pack {
  const wrap = opts.wrap ?? (<T>(fn: () => T) => fn());
  const pack = tar.pack();
  let entries = 0;
  const add = async (abs: string, name: string): Promise<void> => {
    const st = wrap(() => lstatSync(abs));
    if (++entries > MAX_ENTRIES) throw new Error(`more than ${MAX_ENTRIES} entries to copy`);
    const base = { name, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isSymbolicLink()) {
      await entry(pack, { ...base, type: "symlink", linkname: wrap(() => readlinkSync(abs)) });
    } else if (st.isDirectory()) {
      await entry(pack, { ...base, type: "directory" });
      for (const n of wrap(() => readdirSync(abs)).sort()) {
        if (!opts.skip?.(join(abs, n))) await add(join(abs, n), `${name}/${n}`);
      }
    } else if (st.isFile()) {
      const fd = wrap(() => openSync(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK));
      try {
        const w = pack.entry({ ...base, type: "file", size: st.size });
        const done = new Promise<void>((resolve, reject) => { w.on("finish", () => resolve()); w.on("error", reject); });
        const buf = Buffer.allocUnsafe(CHUNK);
        let left = st.size;
        while (left > 0) {
          const n = readSync(fd, buf, 0, Math.min(CHUNK, left), null);
          if (n === 0) throw new Error(`${name} shrank while it was copied`);
          left -= n;
          if (!w.write(Buffer.from(buf.subarray(0, n)))) await new Promise<void>((r) => w.once("drain", () => r()));
        }
        w.end(undefined as unknown as Buffer);
        await done;
      } finally {
        closeSync(fd);
      }
    } // sockets, FIFOs, devices: not copied
  };
  void (async () => {
    try {
      await add(path, opts.name ?? topName(path));
      pack.finalize();
    } catch (e) {
      pack.destroy(e as Error);
    }
  })();
  return pack;
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
}
