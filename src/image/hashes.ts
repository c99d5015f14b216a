// sha256 of files, remembered by (device, inode, size, mtime, ctime) in a small
// JSON file so a warm `image build` need not re-read a 100 MB node binary.
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (b) => h.update(b))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

interface Entry { key: string; sha256: string }

export class HashCache {
  private entries: Record<string, Entry> = {};
  private dirty = false;
  private readonly used = new Set<string>();

  private constructor(private readonly file: string) {}

  static async open(file: string): Promise<HashCache> {
    const c = new HashCache(file);
    try {
      const parsed = JSON.parse(await readFile(file, "utf8")) as unknown;
      if (parsed && typeof parsed === "object") c.entries = parsed as Record<string, Entry>;
    } catch {
      // missing or corrupt: start empty
    }
    return c;
  }

  async sha256(path: string): Promise<string> {
    const st = await stat(path, { bigint: true });
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    this.used.add(path);
    const hit = this.entries[path];
    if (hit && hit.key === key) return hit.sha256;
    const sha256 = await sha256File(path);
    this.entries[path] = { key, sha256 };
    this.dirty = true;
    return sha256;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    // forget files that are gone (e.g. a test's temporary lohar.js)
    for (const p of Object.keys(this.entries)) if (!this.used.has(p) && !existsSync(p)) delete this.entries[p];
    const tmp = `${this.file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(this.entries), { mode: 0o644 });
    await rename(tmp, this.file);
    this.dirty = false;
  }
}
