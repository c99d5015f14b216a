// lohar's log: one line per event on stderr. Callers pass only names, paths,
// codes and numbers — never config values, env values or file contents.
export function log(msg: string): void {
  process.stderr.write(`lohar: ${msg}\n`);
}

/** A short, value-free description of a system error: its code and a plain reason. */
export function errText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string") return "failed";
  const reason = REASONS[code];
  return reason ? `${code} (${reason})` : code;
}

const REASONS: Record<string, string> = {
  ENOENT: "not found",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  EEXIST: "already exists",
  ENOTEMPTY: "directory not empty",
  EBUSY: "busy",
  ENOSPC: "no space left",
  EROFS: "read-only file system",
  ELOOP: "too many symlinks",
  ENAMETOOLONG: "name too long",
  EINVAL: "invalid argument",
  E2BIG: "argument list too long",
  ENOEXEC: "exec format error",
};
