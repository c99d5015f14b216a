// Boot: read the config drive, take the drive away, apply files and hostname,
// start the optional init command. Returns what lohar keeps in memory.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname as currentHostname } from "node:os";
import { spawn } from "node:child_process";
import { GUEST, type ConfigVolume } from "../protocol/agent.js";
import type { Args } from "./args.js";
import { readConfig, writeConfigFile } from "./config.js";
import { mountSecretsDir, writeSecretFiles } from "./secret-files.js";
import { commandEnv } from "./env.js";
import { log, errText } from "./log.js";
import { run } from "./run.js";
import { defaultCwd } from "./util.js";
import { asCommand } from "./oom.js";
import { installTrust } from "./trust.js";
import { configureNet, validNet } from "./net.js";

/** What lohar holds for its lifetime. token and env are secret: memory only. */
export interface Sandbox {
  readonly id: string;
  readonly hostname: string;
  readonly token: string;
  readonly env: Readonly<Record<string, string>>;
}

const VM_CONFIG_DEVICE = "/dev/vdb";

export async function boot(args: Args): Promise<Sandbox> {
  if (args.vm) {
    mkdirSync(args.configDir, { recursive: true });
    await run("/bin/mount", ["-t", "ext4", "-o", "ro", VM_CONFIG_DEVICE, args.configDir]);
  }
  const c = readConfig(args.configDir);
  const sandbox: Sandbox = Object.freeze({ id: c.sandbox_id, hostname: c.hostname, token: c.token, env: Object.freeze({ ...c.env }) });

  // The drive goes away first (in parallel with the rest): the less time it is mounted, the better.
  const unmounted = args.unmount ? takeDriveAway(args) : Promise.resolve();
  const named = args.hostname && c.hostname && c.hostname !== currentHostname() ? setHostname(c.hostname) : Promise.resolve();
  // netvm (issue 10): the vm's NIC, in parallel with the rest; a failure stops the boot (a create asked for a network).
  const net = args.vm && c.net !== undefined ? netUp(c.net) : Promise.resolve();
  net.catch(() => {});
  for (const f of c.files) {
    try {
      writeConfigFile(f);
    } catch (e) {
      log(`config file ${JSON.stringify(String(f.path))} not written: ${e instanceof Error && !(e as NodeJS.ErrnoException).code ? e.message : errText(e)}`);
    }
  }
  // Secret files: a failure here stops the boot (the create fails) rather than start a sandbox without them.
  const secretFiles = c.secret_files ?? [];
  c.secret_files = [];
  if (secretFiles.length) {
    try {
      if (args.vm) await mountSecretsDir();
      writeSecretFiles(secretFiles);
    } catch (e) {
      await Promise.allSettled([unmounted, named, net]);
      throw e;
    } finally {
      for (const f of secretFiles) f.value = "";
    }
  }
  // brokerstore (issue 11), vm: the sandbox CA into the trust store (ns: bind-mounted by the daemon). Without it, brokered HTTPS fails: stop the boot.
  if (args.vm && c.ca_cert) {
    try {
      installTrust(c.ca_cert);
    } catch (e) {
      await Promise.allSettled([unmounted, named, net]);
      throw e;
    }
  }
  await Promise.all([unmounted, named, net]);
  if (args.vm && Array.isArray(c.volumes)) await mountVolumes(c.volumes);
  if (c.init) startInit(c.init, sandbox.env);
  return sandbox;
}

/**
 * life (issue 14), vm: mounts each volume disk (found by its virtio serial in
 * /sys/block) at its path. A volume that cannot be mounted is logged and
 * skipped: the sandbox still boots (its path is then an empty directory).
 */
async function mountVolumes(vols: ConfigVolume[]): Promise<void> {
  const serials = new Map<string, string>();
  try {
    for (const dev of readdirSync("/sys/block")) {
      try { serials.set(readFileSync(`/sys/block/${dev}/serial`, "utf8").trim(), dev); } catch { /* no serial */ }
    }
  } catch { /* no sysfs */ }
  for (const v of vols) {
    if (!v || typeof v.serial !== "string" || !/^[a-z0-9-]{1,20}$/.test(v.serial) || typeof v.path !== "string" || !v.path.startsWith("/") || v.path.includes("\0")) {
      log("volume entry malformed, skipped");
      continue;
    }
    const dev = serials.get(v.serial);
    if (!dev) {
      log(`volume disk ${v.serial} not found`);
      continue;
    }
    try {
      mkdirSync(v.path, { recursive: true });
      await run("/bin/mount", ["-t", "ext4", "-o", v.ro === true ? "ro,nosuid,nodev" : "nosuid,nodev", `/dev/${dev}`, v.path]);
    } catch (e) {
      log(`volume ${v.serial} not mounted at ${JSON.stringify(v.path)}: ${errText(e)}`);
    }
  }
}

async function netUp(n: unknown): Promise<void> {
  const c = validNet(n);
  if (!c) throw new Error("config.json: net is malformed");
  const t = Date.now();
  await configureNet(c).catch((e: Error) => { throw new Error(`network not configured: ${e.message}`); });
  log(`network up in ${Date.now() - t} ms`);
}

/** Real root (vm) can write the UTS name directly; a user-namespace root (ns) cannot, so fall back to busybox. */
async function setHostname(name: string): Promise<void> {
  try {
    writeFileSync("/proc/sys/kernel/hostname", name);
    return;
  } catch {
    // not permitted here
  }
  await run("/bin/hostname", [name]).catch((e: Error) => log(`hostname not set: ${e.message}`));
}

async function takeDriveAway(args: Args): Promise<void> {
  try {
    await run("/bin/umount", [args.configDir]);
    rmdirSync(args.configDir);
    if (args.vm) unlinkSync(VM_CONFIG_DEVICE);
  } catch (e) {
    throw new Error(`config drive not removed, refusing to serve: ${e instanceof Error && !(e as NodeJS.ErrnoException).code ? e.message : errText(e)}`);
  }
}

function startInit(script: string, env: Readonly<Record<string, string>>): void {
  try {
    const child = asCommand(() => spawn("/bin/sh", ["-c", script], {
      uid: GUEST.user.uid,
      gid: GUEST.user.gid,
      cwd: defaultCwd(),
      env: commandEnv(env),
      detached: true,
      stdio: "ignore",
    }));
    child.on("error", (e) => log(`init not started: ${errText(e)}`));
    child.on("exit", (code, signal) => log(`init finished: ${signal ?? `exit ${code}`}`));
    child.unref();
  } catch (e) {
    log(`init not started: ${errText(e)}`);
  }
}
