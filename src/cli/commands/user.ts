// `bhatti user …`: operator commands on the daemon's database (no daemon
// needed, but the database must be the one the daemon uses: a data dir with
// neither a database nor a running daemon is refused unless --init says so).
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { intOption, operatorOptions, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";
import type { UserService } from "../../users/service.js";

type Op = { dataDir?: string; json?: boolean };
interface LimitOpts { maxSandboxes?: string; maxCpus?: string; maxMemory?: string; maxDisk?: string; maxEgress?: string }

async function withUsers<T>(o: Op & { init?: boolean }, fn: (u: UserService) => T): Promise<T> {
  const dir = resolveDataDir(o.dataDir);
  const db = dataPaths(dir).db;
  if (!existsSync(db)) {
    const { livePid } = await import("../../server/pidfile.js");
    const { DAEMON_MARKER } = await import("../../server/daemon.js");
    const daemon = existsSync(dir) ? livePid(dataPaths(dir).pidFile, DAEMON_MARKER) : undefined;
    if (!daemon && !o.init) {
      throw new Error(`no bhatti database in ${dir} and no daemon running there: give the data dir your daemon uses (--data-dir DIR or BHATTI_DATA_DIR; \`bhatti serve\` prints it), or pass --init to create a new database here`);
    }
  }
  const { openDb } = await import("../../store/db.js");
  const { UserService } = await import("../../users/service.js");
  const handle = openDb(dataPaths(ensureDataDir(dir)).db);
  try { return fn(new UserService(handle)); } finally { handle.close(); }
}

function limitOptions(c: Command, dflt: boolean): Command {
  const d = (v: number) => (dflt ? ` (default ${v})` : "");
  return c
    .option("--max-sandboxes <n>", `sandboxes at a time${d(5)}`)
    .option("--max-cpus <n>", `CPUs over all sandboxes${d(4)}`)
    .option("--max-memory <mb>", `MiB of memory over all sandboxes${d(4096)}`)
    .option("--max-disk <mb>", `MiB of writable disk over all sandboxes${d(20480)}`)
    .option("--max-egress <mode>", `the most egress its sandboxes may have: public, deny or none (public > deny > none)${dflt ? " (default public)" : ""}`);
}

/** --max-egress: checked before the database is opened (a usage error, exit 2). */
function egressOption(v: string | undefined): "public" | "deny" | "none" | undefined {
  if (v === undefined) return undefined;
  if (v !== "public" && v !== "deny" && v !== "none") throw new UsageError("--max-egress must be one of public, deny, none");
  return v;
}

export function register(cmd: Command): void {
  operatorOptions(limitOptions(cmd.command("create").description("create a user and print its API key (once)")
    .requiredOption("--name <name>", "user name: a lowercase letter, then letters, digits, _ or -"), true)
    .option("--init", "create the database when the data dir has none (a new installation)"))
    .action(run(async (o: Op & LimitOpts & { name: string; init?: boolean }) => {
      const { DEFAULT_LIMITS } = await import("../../users/service.js");
      const limits = {
        max_sandboxes: intOption("max-sandboxes", o.maxSandboxes, DEFAULT_LIMITS.max_sandboxes),
        max_cpus: intOption("max-cpus", o.maxCpus, DEFAULT_LIMITS.max_cpus),
        max_memory_mb: intOption("max-memory", o.maxMemory, DEFAULT_LIMITS.max_memory_mb),
        max_disk_mb: intOption("max-disk", o.maxDisk, DEFAULT_LIMITS.max_disk_mb),
      };
      const maxEgress = egressOption(o.maxEgress) ?? "public";
      const { user, apiKey } = await withUsers(o, (u) => u.create(o.name, limits, maxEgress));
      if (o.json) printJson({ ...user, api_key: apiKey });
      else process.stdout.write(`created user ${user.name}\napi key (shown once, store it now): ${apiKey}\n`);
      return 0;
    }));
  operatorOptions(limitOptions(cmd.command("update").description("change a user's quotas (takes effect on its next request)")
    .argument("<name>", "user name"), false))
    .action(run(async (name: string, o: Op & LimitOpts) => {
      const change = {
        ...(o.maxSandboxes !== undefined ? { max_sandboxes: intOption("max-sandboxes", o.maxSandboxes, 0) } : {}),
        ...(o.maxCpus !== undefined ? { max_cpus: intOption("max-cpus", o.maxCpus, 0) } : {}),
        ...(o.maxMemory !== undefined ? { max_memory_mb: intOption("max-memory", o.maxMemory, 0) } : {}),
        ...(o.maxDisk !== undefined ? { max_disk_mb: intOption("max-disk", o.maxDisk, 0) } : {}),
        ...(o.maxEgress !== undefined ? { max_egress: egressOption(o.maxEgress) } : {}),
      };
      if (Object.keys(change).length === 0) throw new UsageError("give at least one of --max-sandboxes, --max-cpus, --max-memory, --max-disk, --max-egress");
      const user = await withUsers(o, (u) => u.updateLimits(name, change));
      if (o.json) printJson(user);
      else process.stdout.write(`user ${user.name}: max ${user.max_sandboxes} sandboxes, ${user.max_cpus} cpus, ${user.max_memory_mb} MiB memory, ${user.max_disk_mb} MiB disk, egress at most ${user.max_egress}\n`);
      return 0;
    }));
  operatorOptions(cmd.command("list").description("list users with their quotas and counts (never keys)"))
    .action(run(async (o: Op) => {
      const users = await withUsers(o, (u) => u.list());
      if (o.json) printJson(users);
      else printTable(["NAME", "SECRETS", "SANDBOXES", "MAX_SANDBOXES", "MAX_CPUS", "MAX_MEMORY_MB", "MAX_DISK_MB", "MAX_EGRESS", "CREATED"],
        users.map((u) => [u.name, u.secrets, u.sandboxes, u.max_sandboxes, u.max_cpus, u.max_memory_mb, u.max_disk_mb, u.max_egress, u.created_at]));
      return 0;
    }));
  operatorOptions(cmd.command("rotate-key").description("give a user a new API key; the old one stops working").argument("<name>", "user name"))
    .action(run(async (name: string, o: Op) => {
      const apiKey = await withUsers(o, (u) => u.rotateKey(name));
      if (o.json) printJson({ name, api_key: apiKey });
      else process.stdout.write(`new api key for ${name} (shown once; the old key no longer works): ${apiKey}\n`);
      return 0;
    }));
  operatorOptions(cmd.command("delete").description("delete a user (refused while it owns secrets, sandboxes, volumes or snapshots)").argument("<name>", "user name")
    .option("--force", "delete everything it owns too: secrets, sandboxes (a running daemon destroys them), volumes, snapshots, templates"))
    .action(run(async (name: string, o: Op & { force?: boolean }) => {
      const res = await withUsers(o, (u) => u.delete(name, !!o.force, resolveDataDir(o.dataDir)));
      if (o.json) printJson({ name, deleted: true, ...res });
      else process.stdout.write(`deleted user ${name}${Object.values(res).some((n) => n > 0) ? ` with ${res.secrets} secret(s), ${res.sandboxes} sandbox(es), ${res.volumes} volume(s) and ${res.snapshots} snapshot(s)` : ""}\n`);
      return 0;
    }));
}
