// `bhatti serve`: runs the daemon. Everything heavy is imported inside the
// action, so `bhatti serve --help` loads nothing and starts nothing.
import type { Command } from "commander";
import { intOption, repeatable, run, UsageError } from "../args.js";
import { realpathSync } from "node:fs";
import { resolveDataDir } from "../../util/paths.js";

/** A positive number flag (integer if asked), or undefined when absent. */
function positive(v: string | undefined, flag: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`${flag} must be a positive ${integer ? "integer" : "number"}`);
  return n;
}

interface ServeOpts {
  dataDir?: string; listen?: string; engine?: string; rateLimit?: string; maxConnections?: string; maxConnectionsPerUser?: string;
  authTimeout?: string; maxSandboxes?: string; overcommitMemory?: string; overcommitCpus?: string; image?: string; eventsRetentionDays?: string; idleWarmSeconds?: string; idleColdMinutes?: string; defaultEgress?: string; dnsUpstream?: string; netPool?: string; privateCidr?: string[];
}

export function register(cmd: Command): void {
  cmd
    .option("--data-dir <dir>", "state: age.key, state.db, sandboxes (default: $BHATTI_DATA_DIR or ~/.bhatti)")
    .option("--listen <host:port>", "HTTP address (default: $BHATTI_LISTEN or 127.0.0.1:8080)")
    .option("--engine <name>", "isolation engine: ns, vm or auto (default: $BHATTI_ENGINE or auto)")
    .option("--rate-limit <n>", "requests per second per user, 0 disables (default 100)")
    .option("--max-connections <n>", "open connections in all")
    .option("--max-connections-per-user <n>", "open connections per user")
    .option("--auth-timeout <sec>", "seconds a connection may take to authenticate")
    .option("--max-sandboxes <n>", "sandboxes on this host, all users together")
    .option("--overcommit-memory <f>", "factor of host memory sandboxes may reserve")
    .option("--overcommit-cpus <f>", "factor of host CPUs sandboxes may reserve")
    .option("--image <name>", "default image of sandboxes and templates that name none (default: $BHATTI_IMAGE)")
    .option("--idle-warm-seconds <s>", "pause sandboxes after this many seconds without API activity (default: never)")
    .option("--idle-cold-minutes <m>", "stop (vm: save memory of) sandboxes after this many idle minutes (default: never)")
    .option("--default-egress <public|deny|none>", "egress policy of sandboxes that name none (default public)")
    .option("--dns-upstream <ipv4[:port]>", "resolver the daemon's DNS asks (default: the host's first nameserver)")
    .option("--net-pool <cidr>", "addresses of sandboxes (default 10.213.0.0/16; must not overlap the host's networks)")
    .addOption(repeatable("--private-cidr <cidr>", "another range denied unless a sandbox's --allow-cidr names it (repeatable)"))
    .option("--events-retention-days <n>", "days the audit trail keeps events (default: $BHATTI_EVENTS_RETENTION_DAYS or 90)")
    .action(run(serveAction));
}

async function serveAction(o: ServeOpts): Promise<number> {
  const { serve } = await import("../../server/daemon.js");
  const { DEFAULT_LIMITS } = await import("../../server/connections.js");
  const { stopProbes } = await import("../../engine/vm/accel.js");
  const { canonicalImage, NAME_RE } = await import("../../image/names.js");
  const values = {
    "data-dir": o.dataDir, listen: o.listen, engine: o.engine, "rate-limit": o.rateLimit, "max-connections": o.maxConnections,
    "max-connections-per-user": o.maxConnectionsPerUser, "auth-timeout": o.authTimeout, "max-sandboxes": o.maxSandboxes,
    "overcommit-memory": o.overcommitMemory, "overcommit-cpus": o.overcommitCpus, image: o.image, "events-retention-days": o.eventsRetentionDays,
    "idle-warm-seconds": o.idleWarmSeconds, "idle-cold-minutes": o.idleColdMinutes,
  };
  const image = values.image ?? process.env.BHATTI_IMAGE;
  if (image !== undefined && !NAME_RE.test(image)) throw new UsageError(`--image must be an image name (${NAME_RE.source})`);
  const limits = {
    max: intOption("max-connections", values["max-connections"], DEFAULT_LIMITS.max),
    perUser: intOption("max-connections-per-user", values["max-connections-per-user"], DEFAULT_LIMITS.perUser),
    authTimeoutMs: intOption("auth-timeout", values["auth-timeout"], DEFAULT_LIMITS.authTimeoutMs / 1000) * 1000,
  };
  if (limits.perUser > limits.max) throw new UsageError(`--max-connections-per-user must not exceed --max-connections`);
  const engine = values.engine ?? process.env.BHATTI_ENGINE ?? "auto";
  const { ENGINE_NAMES, isEngineName } = await import("../../engine/names.js");
  if (engine !== "auto" && !isEngineName(engine)) throw new UsageError(`--engine must be ${ENGINE_NAMES.join(", ")} or auto`);
  const rate = values["rate-limit"] === undefined ? 100 : Number(values["rate-limit"]);
  if (!Number.isFinite(rate) || rate < 0) throw new Error("--rate-limit must be a number of requests per second (0 disables it)");
  // Signals are caught from the start: one that arrives while the daemon is
  // still starting (or just after it said "listening") still gets a clean stop.
  // A probe still running is killed at once: a daemon starting with
  // --engine vm would otherwise wait for it before it can stop.
  let signalled!: () => void;
  let stopping = false;
  const stopRequested = new Promise<void>((resolve) => { signalled = resolve; });
  const onSignal = (): void => { stopping = true; void stopProbes(); signalled(); };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let daemon: Awaited<ReturnType<typeof serve>>;
  try {
    daemon = await serve({
      dataDir: resolveDataDir(values["data-dir"]),
      listen: values.listen ?? process.env.BHATTI_LISTEN ?? "127.0.0.1:8080",
      rateLimit: rate,
      engine,
      limits,
      ...(image ? { image: canonicalImage(image) } : {}),
      maxSandboxes: positive(values["max-sandboxes"], "--max-sandboxes", true),
      overcommitMemory: positive(values["overcommit-memory"], "--overcommit-memory", false),
      overcommitCpus: positive(values["overcommit-cpus"], "--overcommit-cpus", false),
      ...(o.defaultEgress ? { defaultEgress: egressOf(o.defaultEgress) } : {}),
      ...(o.dnsUpstream ? { dnsUpstream: o.dnsUpstream } : {}),
      ...(o.netPool ? { netPool: o.netPool } : {}),
      ...(o.privateCidr ? { privateCidrs: o.privateCidr } : {}),
      idleWarmSeconds: positive(values["idle-warm-seconds"], "--idle-warm-seconds", false),
      idleColdMinutes: positive(values["idle-cold-minutes"], "--idle-cold-minutes", false),
      eventsRetentionDays: positive(values["events-retention-days"] ?? process.env.BHATTI_EVENTS_RETENTION_DAYS, "--events-retention-days", true),
    });
  } catch (e) {
    if (!stopping) throw e;
    process.stderr.write(`stopped while starting (${(e as Error).message})\n`);
    return 0;
  }
  process.stdout.write(banner(realpathSync(resolveDataDir(values["data-dir"]))));
  await stopRequested;
  await daemon.close();
  return 0;
}

/** Quotes a path for a POSIX shell when it needs it. */
const sh = (p: string): string => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`);

/** What to do next, with the exact data dir operator commands must name (they open this daemon's database). */
export function banner(dataDir: string): string {
  const dd = `--data-dir ${sh(dataDir)}`;
  return "\nOperator commands (user, key, image, admin) must use this daemon's data dir:\n" +
    `  ${dd}    (or: export BHATTI_DATA_DIR=${sh(dataDir)})\n` +
    "\nNext steps, in another shell:\n" +
    `  bin/bhatti user create --name alice ${dd}   # prints an API key, once\n` +
    "  bin/bhatti setup --token bht_...             # saves url + key to ~/.bhatti/config.yaml\n" +
    "  bin/bhatti secret set API_KEY                # asks for the value without echo\n" +
    "  bin/bhatti secret list\n\n";
}

function egressOf(v: string): "public" | "deny" | "none" {
  if (v !== "public" && v !== "deny" && v !== "none") throw new UsageError("--default-egress must be public, deny or none");
  return v;
}
