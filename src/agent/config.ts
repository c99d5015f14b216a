// The config drive: read config.json, then apply what belongs on the sandbox's
// disk (files, hostname). The token and env stay in memory (see Secrets).
import { readFileSync, mkdirSync, writeFileSync, chownSync, chmodSync, renameSync, openSync, fsyncSync, closeSync, statSync, rmSync } from "node:fs";
import { dirname, join, isAbsolute, basename } from "node:path";
import { GUEST, type ConfigDrive, type ConfigFile } from "../protocol/agent.js";
import { tempName } from "./util.js";

export function readConfig(dir: string): ConfigDrive {
  const raw = readFileSync(join(dir, "config.json"), "utf8");
  let c: ConfigDrive;
  try {
    c = JSON.parse(raw) as ConfigDrive;
  } catch {
    throw new Error("config.json is not valid JSON"); // the parser's message may quote content
  }
  if (!c || typeof c !== "object") throw new Error("config.json: not an object");
  if (typeof c.token !== "string" || c.token === "") throw new Error("config.json: token missing");
  if (typeof c.sandbox_id !== "string") throw new Error("config.json: sandbox_id missing");
  if (typeof c.hostname !== "string") c.hostname = "";
  if (!c.env || typeof c.env !== "object") c.env = {};
  for (const [k, v] of Object.entries(c.env)) {
    if (typeof v !== "string" || k === "" || k.includes("=") || k.includes("\0") || v.includes("\0")) {
      throw new Error(`config.json: env ${JSON.stringify(k.slice(0, 64))} is not a valid variable`);
    }
  }
  if (!Array.isArray(c.files)) c.files = [];
  if (!Array.isArray(c.secret_files)) c.secret_files = [];
  return c;
}

/** Create missing parent dirs of `path`, owned by the sandbox user. Existing dirs are left untouched. */
export function mkdirsOwned(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      statSync(d);
      break;
    } catch {
      missing.unshift(d);
      if (d === dirname(d)) break;
    }
  }
  for (const d of missing) {
    mkdirSync(d, { mode: 0o755 });
    chownSync(d, GUEST.user.uid, GUEST.user.gid);
  }
}

export function writeConfigFile(f: ConfigFile): void {
  if (typeof f.path !== "string" || !isAbsolute(f.path)) throw new Error(`config file path ${JSON.stringify(String(f.path))} is not absolute`);
  const mode = typeof f.mode === "number" ? f.mode & 0o7777 : 0o644;
  mkdirsOwned(dirname(f.path));
  const tmp = join(dirname(f.path), tempName(basename(f.path)));
  const fd = openSync(tmp, "wx", 0o600);
  try {
    try {
      writeFileSync(fd, Buffer.from(String(f.content ?? ""), "base64"));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chownSync(tmp, GUEST.user.uid, GUEST.user.gid);
    chmodSync(tmp, mode);
    renameSync(tmp, f.path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
