import { intOption, parse, UsageError } from "../args.js";
import { resolveDataDir } from "../../util/paths.js";
import { serve } from "../../server/daemon.js";
import { DEFAULT_LIMITS } from "../../server/connections.js";
import { stopProbes } from "../../engine/vm/accel.js";
import { canonicalImage, NAME_RE } from "../../image/names.js";

const USAGE = "bhatti serve [--data-dir DIR] [--listen HOST:PORT] [--engine ns|vm|auto] [--rate-limit N]\n" +
  "      [--max-connections N] [--max-connections-per-user N] [--auth-timeout SECONDS]\n" +
  "      [--max-sandboxes N] [--overcommit-memory F] [--overcommit-cpus F] [--image NAME]\n" +
  "      [--default-egress public|deny|none] [--dns-upstream IPV4[:PORT]] [--net-pool CIDR] [--private-cidr CIDR]...";

/** A positive number flag (integer if asked), or undefined when absent. */
function positive(v: string | undefined, flag: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`${flag} must be a positive ${integer ? "integer" : "number"}\nusage: ${USAGE}`);
  return n;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    listen: { type: "string" },
    "rate-limit": { type: "string" },
    engine: { type: "string" },
    "max-connections": { type: "string" },
    "max-connections-per-user": { type: "string" },
    "auth-timeout": { type: "string" },
    "max-sandboxes": { type: "string" },
    "overcommit-memory": { type: "string" },
    "overcommit-cpus": { type: "string" },
    image: { type: "string" }, // default image of sandboxes and templates that name none
    "default-egress": { type: "string" },
    "dns-upstream": { type: "string" },
    "net-pool": { type: "string" },
    "private-cidr": { type: "string", multiple: true },
  }, { usage: USAGE });
  const defaultEgress = values["default-egress"];
  if (defaultEgress !== undefined && !["public", "deny", "none"].includes(defaultEgress)) throw new UsageError(`--default-egress must be public, deny or none\nusage: ${USAGE}`);
  const image = values.image ?? process.env.BHATTI_IMAGE;
  if (image !== undefined && !NAME_RE.test(image)) throw new UsageError(`--image must be an image name (${NAME_RE.source})\nusage: ${USAGE}`);
  const limits = {
    max: intOption("max-connections", values["max-connections"], DEFAULT_LIMITS.max),
    perUser: intOption("max-connections-per-user", values["max-connections-per-user"], DEFAULT_LIMITS.perUser),
    authTimeoutMs: intOption("auth-timeout", values["auth-timeout"], DEFAULT_LIMITS.authTimeoutMs / 1000) * 1000,
  };
  if (limits.perUser > limits.max) throw new UsageError(`--max-connections-per-user must not exceed --max-connections\nusage: ${USAGE}`);
  const engine = values.engine ?? process.env.BHATTI_ENGINE ?? "auto";
  if (engine !== "ns" && engine !== "vm" && engine !== "auto") throw new UsageError(`--engine must be ns, vm or auto\nusage: ${USAGE}`);
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
      ...(defaultEgress ? { defaultEgress: defaultEgress as "public" | "deny" | "none" } : {}),
      ...(values["dns-upstream"] ? { dnsUpstream: values["dns-upstream"] } : {}),
      ...(values["net-pool"] ? { netPool: values["net-pool"] } : {}),
      ...(values["private-cidr"] ? { privateCidrs: values["private-cidr"] } : {}),
    });
  } catch (e) {
    if (!stopping) throw e;
    process.stderr.write(`stopped while starting (${(e as Error).message})\n`);
    return 0;
  }
  process.stdout.write(
    "\nNext steps, in another shell:\n" +
    "  bin/bhatti user create --name alice          # prints an API key, once\n" +
    "  bin/bhatti setup --token bht_...             # saves url + key to ~/.bhatti/config.yaml\n" +
    "  echo -n s3cret | bin/bhatti secret set API_KEY\n" +
    "  bin/bhatti secret list\n\n",
  );
  await stopRequested;
  await daemon.close();
  return 0;
}
