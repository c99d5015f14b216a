// Debian packages for the guest image: which version apt would install
// (its candidate), and the verified .deb file for it in our cache.
//
// `apt-cache` takes ~0.5 s on a host without apt's binary cache, too slow for a
// warm `image build`, so its answer is remembered together with a stamp of
// everything that can change a candidate (apt's lists, its config, dpkg's status).
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { sha256File, sha256Hex } from "./hashes.js";
import { run } from "./run.js";

export interface DebInfo {
  package: string;
  version: string;
  architecture: string;
  sha256: string;
  filename: string; // the pool path in the archive
}

interface ResolveCache { stamp: string; debs: Record<string, DebInfo> }

type Log = (line: string) => void;

const APT_ARCHIVES = "/var/cache/apt/archives";

async function statLines(dir: string, recurse: boolean, out: string[]): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    out.push(`${dir}:missing`);
    return;
  }
  for (const n of names.sort()) {
    if (n === "lock" || n === "partial") continue;
    const p = join(dir, n);
    try {
      const st = await stat(p);
      if (st.isDirectory()) {
        if (recurse) await statLines(p, recurse, out);
      } else out.push(`${p}:${st.size}:${st.mtimeMs}`);
    } catch {
      // vanished while listing
    }
  }
}

/** A fingerprint of every input of apt's candidate choice. */
export async function aptStamp(): Promise<string> {
  const lines: string[] = [];
  await statLines("/var/lib/apt/lists", false, lines);
  await statLines("/etc/apt", true, lines);
  try {
    const st = await stat("/var/lib/dpkg/status");
    lines.push(`dpkg:${st.size}:${st.mtimeMs}`);
  } catch {
    lines.push("dpkg:missing");
  }
  return sha256Hex(lines.join("\n"));
}

export function parseAptShow(text: string): DebInfo[] {
  const out: DebInfo[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const line of stanza.split("\n")) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) f[m[1]] = m[2];
    }
    if (!f.Package) continue;
    out.push({ package: f.Package, version: f.Version ?? "", architecture: f.Architecture ?? "", sha256: f.SHA256 ?? "", filename: f.Filename ?? "" });
  }
  return out;
}

async function aptShow(names: string[]): Promise<Record<string, DebInfo>> {
  const { stdout } = await run("apt-cache", ["show", "--no-all-versions", ...names]);
  const byName: Record<string, DebInfo> = {};
  for (const d of parseAptShow(stdout)) byName[d.package] ??= d;
  for (const n of names) {
    const d = byName[n];
    if (!d) throw new Error(`apt has no candidate for ${n}`);
    if (!/^[0-9a-f]{64}$/.test(d.sha256) || !d.filename) throw new Error(`apt knows ${n} ${d.version} only as installed, not from an archive (run apt-get update)`);
  }
  return byName;
}

export async function aptUpdate(log: Log): Promise<void> {
  log("apt-get update");
  await run("apt-get", ["update", "-qq"], { env: { DEBIAN_FRONTEND: "noninteractive" } });
}

/** apt's candidate for each package; cached in <cacheDir>/apt-resolve.json while the stamp holds. */
export async function resolveDebs(names: string[], cacheDir: string, log: Log, allowUpdate = true): Promise<Record<string, DebInfo>> {
  const file = join(cacheDir, "apt-resolve.json");
  const stamp = await aptStamp();
  try {
    const cached = JSON.parse(await readFile(file, "utf8")) as ResolveCache;
    if (cached.stamp === stamp && names.every((n) => cached.debs[n])) return cached.debs;
  } catch {
    // no cache yet
  }
  let debs: Record<string, DebInfo>;
  try {
    debs = await aptShow(names);
  } catch (e) {
    if (!allowUpdate) throw e;
    log(`apt lookup failed (${(e as Error).message}); updating package lists once`);
    await aptUpdate(log);
    return resolveDebs(names, cacheDir, log, false);
  }
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify({ stamp, debs } satisfies ResolveCache));
  await rename(tmp, file);
  return debs;
}

async function hasSha(path: string, sha256: string): Promise<boolean> {
  try {
    return (await sha256File(path)) === sha256;
  } catch {
    return false;
  }
}

/** The cached .deb for `info` (verified against apt's sha256), fetched with `apt-get download` if needed. */
export async function fetchDeb(info: DebInfo, debsDir: string, log: Log, aptArchives = APT_ARCHIVES): Promise<string> {
  await mkdir(debsDir, { recursive: true });
  const dest = join(debsDir, basename(info.filename));
  if (await hasSha(dest, info.sha256)) return dest;
  // apt may already hold it (e.g. it installed the same package on the host).
  const aptName = `${info.package}_${info.version.replace(/:/g, "%3a")}_${info.architecture}.deb`;
  const local = join(aptArchives, aptName);
  if (await hasSha(local, info.sha256)) {
    await copyFile(local, `${dest}.tmp-${process.pid}`);
    await rename(`${dest}.tmp-${process.pid}`, dest);
    log(`took ${info.package} ${info.version} from ${aptArchives}`);
    return dest;
  }
  log(`downloading ${info.package} ${info.version}`);
  const tmpDir = await mkdtemp(join(debsDir, ".dl-"));
  try {
    await run("apt-get", ["download", "-qq", `${info.package}=${info.version}`], { cwd: tmpDir });
    const got = (await readdir(tmpDir)).filter((n) => n.endsWith(".deb"));
    if (got.length !== 1) throw new Error(`apt-get download ${info.package} left ${got.length} .deb files`);
    const path = join(tmpDir, got[0]);
    if (!(await hasSha(path, info.sha256))) throw new Error(`${info.package} ${info.version}: downloaded .deb does not match apt's sha256`);
    await rename(path, dest);
    return dest;
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

/** Resolve and fetch every package; on a failed fetch update apt's lists once and try again. */
export async function ensureDebs(names: string[], cacheDir: string, log: Log): Promise<{ info: DebInfo; path: string }[]> {
  const debsDir = join(cacheDir, "debs");
  let debs = await resolveDebs(names, cacheDir, log);
  try {
    return await Promise.all(names.map(async (n) => ({ info: debs[n], path: await fetchDeb(debs[n], debsDir, log) })));
  } catch (e) {
    log(`fetching packages failed (${(e as Error).message}); updating package lists once`);
    await aptUpdate(log);
    debs = await resolveDebs(names, cacheDir, log, false);
    return Promise.all(names.map(async (n) => ({ info: debs[n], path: await fetchDeb(debs[n], debsDir, log) })));
  }
}
