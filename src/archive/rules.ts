// What an entry of a tar stream may be, wherever it is extracted (inside a
// sandbox by lohar, or on the client's disk by `bhatti cp`): a relative path
// with no `..` component, of a regular file, directory or symbolic link.
// Pure functions, shared by both sides.
import { posix } from "node:path";

export class ArchiveRuleError extends Error {}

export const MAX_ENTRIES = 100_000;

/**
 * The entry's path relative to the extraction root, as components. `rename`
 * replaces the first component (cp SRC DEST where DEST does not exist yet).
 */
export function entryParts(raw: string, rename?: string): string[] {
  if (typeof raw !== "string" || raw.includes("\0")) throw new ArchiveRuleError("archive entry names must not contain NUL");
  if (raw.startsWith("/")) throw new ArchiveRuleError(`archive entry ${JSON.stringify(raw.slice(0, 200))} is absolute; entries must be relative paths`);
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw new ArchiveRuleError(`archive entry ${JSON.stringify(raw.slice(0, 200))} contains a .. component`);
  if (parts.length === 0) throw new ArchiveRuleError("archive entry with an empty name");
  if (rename !== undefined) parts[0] = rename;
  return parts;
}

export const ENTRY_TYPES = new Set(["file", "directory", "symlink"]);

export function checkType(type: string | null | undefined, name: string): void {
  if (type === "link") throw new ArchiveRuleError(`archive entry ${JSON.stringify(name.slice(0, 200))} is a hard link; only files, directories and symbolic links are copied`);
  if (!ENTRY_TYPES.has(type ?? "file")) throw new ArchiveRuleError(`archive entry ${JSON.stringify(name.slice(0, 200))} is a ${type}; only files, directories and symbolic links are copied`);
}

/** A name for the top-level entry: the last component of a path ("/" itself has none). */
export function topName(path: string): string {
  const b = posix.basename(posix.normalize(path));
  if (!b || b === "/" || b === "..") throw new ArchiveRuleError(`${JSON.stringify(path)} has no name to copy under; name a file or directory`);
  return b;
}
