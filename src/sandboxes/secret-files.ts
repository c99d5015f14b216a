// Secret references in a sandbox or template request: a plain name (an env
// variable) or {name, path, mode} (a file on a tmpfs in the sandbox). Paths
// are checked here; messages name the rule and never a value.
import { badRequest } from "../util/errors.js";
import { validateSecretName } from "../secrets/validate.js";

export interface SecretFileRef { name: string; path: string; mode: number }
export interface SecretRefs { env: string[]; files: SecretFileRef[] }

export const DEFAULT_SECRET_FILE_MODE = 0o400;
export const MAX_SECRET_FILES = 64;

/** Whole trees a secret file may not be put into (the system's own, and bhatti's). */
const FORBIDDEN_TREES = ["/proc", "/sys", "/dev", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/boot", "/opt/bhatti", "/run/bhatti"];
/** Single files a secret file may not replace. */
const FORBIDDEN_FILES = new Set([
  "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/hosts", "/etc/hostname",
  "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/ld.so.preload", "/etc/ld.so.cache", "/etc/environment", "/etc/profile",
]);
const FORBIDDEN_ETC_DIRS = ["/etc/sudoers.d", "/etc/pam.d", "/etc/security", "/etc/profile.d", "/etc/ld.so.conf.d"];

/** One secret file's path: absolute, normalized, at most 4096 bytes, and outside the system's paths. */
export function validateSecretPath(path: unknown, what: string): string {
  if (typeof path !== "string" || path.length === 0) throw badRequest(`${what} must be an absolute path`);
  if (path.includes("\u0000")) throw badRequest(`${what} must not contain a NUL byte`);
  if (Buffer.byteLength(path) > 4096) throw badRequest(`${what} must be at most 4096 bytes`);
  if (!path.startsWith("/")) throw badRequest(`${what} must be an absolute path (start with /)`);
  const parts = path.slice(1).split("/");
  if (parts.includes("..")) throw badRequest(`${what} must not contain '..'`);
  if (parts.some((p) => p === "" || p === ".")) throw badRequest(`${what} must be normalized: no '//', no '.' component, no trailing '/' (and not / itself)`);
  const under = (t: string) => path === t || path.startsWith(t + "/");
  const tree = FORBIDDEN_TREES.find(under) ?? FORBIDDEN_ETC_DIRS.find(under);
  if (tree) throw badRequest(`${what} must not be under ${tree} (a system path)`);
  if (FORBIDDEN_FILES.has(path)) throw badRequest(`${what} must not replace the system file ${path}`);
  if (parts.length === 1 && ["etc", "home", "root", "tmp", "var", "run", "opt", "srv", "mnt", "media"].includes(parts[0])) {
    throw badRequest(`${what} must name a file, not the system directory ${path}`);
  }
  return path;
}

/** A mode as a number (API) or an octal string (CLI): permission bits only, default 0400. */
export function validateSecretMode(mode: unknown, what: string): number {
  if (mode === undefined || mode === null) return DEFAULT_SECRET_FILE_MODE;
  const m = typeof mode === "string" && /^0?[0-7]{3}$/.test(mode) ? parseInt(mode, 8) : mode;
  if (typeof m !== "number" || !Number.isInteger(m) || m < 0 || m > 0o777) throw badRequest(`${what} must be permission bits between 0 and 0777 (e.g. 0400 or 256)`);
  if ((m & 0o400) === 0) throw badRequest(`${what} must let the owner read the file (include 0400)`);
  return m;
}

/** `secrets` of a request: names and {name, path, mode} objects, in any mix. Duplicate names (env) and paths are merged/refused. */
export function validateSecretRefs(v: unknown): SecretRefs {
  if (v === undefined || v === null) return { env: [], files: [] };
  if (!Array.isArray(v)) throw badRequest("secrets must be an array of secret names or {name, path, mode} objects");
  const env: string[] = [];
  const files: SecretFileRef[] = [];
  const paths = new Set<string>();
  v.forEach((item, i) => {
    if (typeof item === "string") { env.push(validateSecretName(item)); return; }
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw badRequest(`secrets[${i}] must be a secret name or an object {name, path, mode}`);
    const { name, path, mode, ...rest } = item as Record<string, unknown>;
    if (Object.keys(rest).length) throw badRequest(`secrets[${i}] has unknown field(s) ${Object.keys(rest).slice(0, 3).map((k) => JSON.stringify(k.slice(0, 32))).join(", ")}; allowed: name, path, mode`);
    const f = { name: validateSecretName(name), path: validateSecretPath(path, `secrets[${i}].path`), mode: validateSecretMode(mode, `secrets[${i}].mode`) };
    if (paths.has(f.path)) throw badRequest(`secrets[${i}].path ${JSON.stringify(f.path)} is given twice: one secret per path`);
    paths.add(f.path);
    files.push(f);
  });
  if (files.length > MAX_SECRET_FILES) throw badRequest(`at most ${MAX_SECRET_FILES} secret files per sandbox`);
  return { env: [...new Set(env)], files };
}

/** A `--secret` flag of the CLI: NAME (env) or NAME:/path[:MODE] (file). */
export function parseSecretFlag(s: string): string | { name: string; path: string; mode?: string } {
  const i = s.indexOf(":");
  if (i < 0) return s;
  const name = s.slice(0, i);
  let path = s.slice(i + 1);
  let mode: string | undefined;
  const m = /^(.*):(0?[0-7]{3})$/.exec(path);
  if (m) { path = m[1]; mode = m[2]; }
  return { name, path, ...(mode ? { mode } : {}) };
}
