// The `path` of the files API, checked in one place before any agent call, so
// a bad path is always a 400 naming the rule (never a 502 from the agent).
import { badRequest } from "../util/errors.js";

export const MAX_PATH_BYTES = 4096; // Linux PATH_MAX
export const MAX_NAME_BYTES = 255; // Linux NAME_MAX

/**
 * Returns the path with `//` runs and `.` segments removed. `..` is kept: with
 * symlinks, `a/link/..` is not `a`, so only the kernel may resolve it.
 * (The query string was already decoded strictly, so the path is valid UTF-8.)
 */
export function checkFilePath(p: string | null): string {
  if (p === null || p === "") throw badRequest("path query parameter is required");
  if (p.includes("\u0000")) throw badRequest("path must not contain NUL");
  if (!p.startsWith("/")) throw badRequest("path must be absolute");
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw badRequest(`path must be at most ${MAX_PATH_BYTES} bytes`);
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) throw badRequest(`each path component must be at most ${MAX_NAME_BYTES} bytes`);
  const trailing = p.length > 1 && /\/\.?$/.test(p) && parts.length > 0;
  return "/" + parts.join("/") + (trailing ? "/" : "");
}
