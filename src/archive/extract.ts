// Extracts a tar stream under a root directory, refusing what could escape it:
// entry names are checked (rules.ts), and no symbolic link is ever followed —
// every directory on the way to an entry is looked at with lstat, and an entry
// that would go through a symlink is refused. Files appear atomically (a
// temporary name, then rename), with the entry's mode. `wrap` runs each
// synchronous filesystem call (lohar: as the sandbox user).
import {
  closeSync, fchmodSync, lstatSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, symlinkSync, unlinkSync, writeSync, type Stats,
} from "node:fs";
import { join } from "node:path";
import * as tar from "tar-stream";
import { ArchiveRuleError, MAX_ENTRIES, checkType, entryParts } from "./rules.js";

export type Wrap = <T>(fn: () => T) => T;
const direct: Wrap = (fn) => fn();

export interface ExtractOptions {
  root: string; // must exist and be a directory
  rename?: string; // new name for the first component of every entry
  wrap?: Wrap;
}

function lstatOrNull(p: string): Stats | null {
  try { return lstatSync(p); } catch (e) { if ((e as NodeJS.ErrnoException).code === "ENOENT") return null; throw e; }
}

/** Feeds `source` (tar bytes) into the root; resolves with counts, or rejects on the first refused entry or error. */
export async function extractTar(source: AsyncIterable<Buffer>, opts: ExtractOptions): Promise<{ entries: number; bytes: number }> {
  const wrap = opts.wrap ?? direct;
  const root = wrap(() => realpathSync(opts.root));
  if (!wrap(() => lstatSync(root)).isDirectory()) throw new ArchiveRuleError(`${opts.root} is not a directory`);
  const ex = tar.extract();
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (ex.destroyed) return;
        if (!ex.write(chunk)) await new Promise<void>((r) => { ex.once("drain", () => r()); ex.once("close", () => r()); });
      }
      ex.end(undefined as unknown as Buffer);
    } catch (e) {
      ex.destroy(e as Error);
    }
  })();
  let entries = 0;
  let bytes = 0;
  try {
    for await (const entry of ex) {
      const h = entry.header;
      if (++entries > MAX_ENTRIES) throw new ArchiveRuleError(`the archive has more than ${MAX_ENTRIES} entries`);
      checkType(h.type, h.name);
      const parts = entryParts(h.name, opts.rename);
      // Every parent: a real directory (created if missing), never a symlink.
      let dir = root;
      for (const p of parts.slice(0, -1)) {
        dir = join(dir, p);
        const st = wrap(() => lstatOrNull(dir));
        if (!st) wrap(() => mkdirSync(dir, { mode: 0o755 }));
        else if (st.isSymbolicLink()) throw new ArchiveRuleError(`archive entry ${JSON.stringify(h.name.slice(0, 200))} goes through a symbolic link; refused`);
        else if (!st.isDirectory()) throw new ArchiveRuleError(`archive entry ${JSON.stringify(h.name.slice(0, 200))}: a parent is not a directory`);
      }
      const dest = join(dir, parts[parts.length - 1]);
      const existing = wrap(() => lstatOrNull(dest));
      if (h.type === "directory") {
        if (!existing) wrap(() => mkdirSync(dest, { mode: (h.mode ?? 0o755) & 0o777 | 0o700 }));
        else if (!existing.isDirectory()) throw new ArchiveRuleError(`archive entry ${JSON.stringify(h.name.slice(0, 200))}: a ${existing.isSymbolicLink() ? "symbolic link" : "file"} of that name exists`);
        entry.resume();
      } else if (h.type === "symlink") {
        if (existing?.isDirectory()) throw new ArchiveRuleError(`archive entry ${JSON.stringify(h.name.slice(0, 200))}: a directory of that name exists`);
        if (existing) wrap(() => unlinkSync(dest));
        wrap(() => symlinkSync(h.linkname ?? "", dest));
        entry.resume();
      } else {
        if (existing?.isDirectory()) throw new ArchiveRuleError(`archive entry ${JSON.stringify(h.name.slice(0, 200))}: a directory of that name exists`);
        const tmp = join(dir, `.${parts[parts.length - 1].slice(0, 200)}.bhatti-${process.getBuiltinModule("node:crypto").randomBytes(6).toString("hex")}`);
        const fd = wrap(() => openSync(tmp, "wx", 0o600));
        try {
          for await (const c of entry) {
            const b = c as Buffer;
            for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
            bytes += b.length;
          }
          fchmodSync(fd, (h.mode ?? 0o644) & 0o7777);
          closeSync(fd);
          wrap(() => renameSync(tmp, dest)); // replaces a symlink of that name, never follows it
        } catch (e) {
          try { closeSync(fd); } catch { /* closed */ }
          wrap(() => rmSync(tmp, { force: true }));
          throw e;
        }
      }
    }
  } catch (e) {
    ex.destroy();
    void feeding; // it ends when the source does (the caller stops it)
    throw e;
  }
  await feeding;
  return { entries, bytes };
}
