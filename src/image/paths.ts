// Where the builder finds its own repository (for dist/lohar.js).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The bhatti repository holding this module, found by walking up to its package.json. */
export function repoRoot(from = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "bhatti") return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the bhatti repository above ${from}`);
    dir = up;
  }
}

export function defaultLoharJs(): string {
  return join(repoRoot(), "dist", "lohar.js");
}
