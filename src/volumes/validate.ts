// Request validation for volumes (issue 14): names, sizes, and the
// `NAME:/path[:ro]` attachments of a sandbox create.
import { badRequest } from "../util/errors.js";
import { validateName } from "../sandboxes/validate.js";

export const MAX_VOLUME_MB = 65_536; // 64 GiB
export const MIN_VOLUME_MB = 16; // ext4 needs room for its own metadata
export const MAX_VOLUMES_PER_USER = 32;
export const MAX_ATTACHED = 8;

export interface VolumeMount { name: string; path: string; ro: boolean }

// Guest paths a volume may not cover: the system's own mounts and bhatti's.
const RESERVED = ["/proc", "/sys", "/dev", "/run", "/tmp", "/opt/bhatti", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/boot"];

export function validateVolumeName(v: unknown): string {
  return validateName(v, "volume name");
}

export function validateSize(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw badRequest("size_mb must be an integer");
  if (v < MIN_VOLUME_MB || v > MAX_VOLUME_MB) throw badRequest(`size_mb must be between ${MIN_VOLUME_MB} and ${MAX_VOLUME_MB}`);
  return v;
}

export function validateGuestPath(p: unknown): string {
  if (typeof p !== "string" || !/^\/[A-Za-z0-9._\/-]{1,255}$/.test(p)) throw badRequest("a volume's path must be an absolute path of letters, digits, '.', '_', '-' and '/' (at most 256 characters)");
  const parts = p.split("/").filter(Boolean);
  if (parts.length === 0 || parts.some((x) => x === "." || x === "..")) throw badRequest("a volume's path may not be / or contain . or .. components");
  const norm = "/" + parts.join("/");
  for (const r of RESERVED) if (norm === r || norm.startsWith(r + "/")) throw badRequest(`a volume may not be mounted at or under ${r}`);
  return norm;
}

/** `volumes` of a create: ["NAME:/path[:ro]", …] or [{name, path, ro?}, …]. */
export function validateVolumeMounts(v: unknown): VolumeMount[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest("volumes must be an array");
  if (v.length > MAX_ATTACHED) throw badRequest(`at most ${MAX_ATTACHED} volumes per sandbox`);
  const out = v.map((x): VolumeMount => {
    if (typeof x === "string") {
      const m = /^([^:]+):([^:]+)(?::(ro|rw))?$/.exec(x);
      if (!m) throw badRequest("a volume is NAME:/path or NAME:/path:ro");
      return { name: validateVolumeName(m[1]), path: validateGuestPath(m[2]), ro: m[3] === "ro" };
    }
    if (!x || typeof x !== "object") throw badRequest("a volume is NAME:/path[:ro] or {name, path, ro}");
    const o = x as Record<string, unknown>;
    if (o.ro !== undefined && typeof o.ro !== "boolean") throw badRequest("a volume's ro must be a boolean");
    return { name: validateVolumeName(o.name), path: validateGuestPath(o.path), ro: o.ro === true };
  });
  const names = new Set<string>();
  const paths = new Set<string>();
  for (const m of out) {
    if (names.has(m.name)) throw badRequest(`volume ${JSON.stringify(m.name)} is listed twice`);
    for (const p of paths) if (p === m.path || p.startsWith(m.path + "/") || m.path.startsWith(p + "/")) throw badRequest(`volume paths ${p} and ${m.path} overlap`);
    names.add(m.name);
    paths.add(m.path);
  }
  return out;
}
