import { parse, UsageError } from "../args.js";
import { resolveDataDir } from "../../util/paths.js";
import { serve } from "../../server/daemon.js";
import { canonicalImage, NAME_RE } from "../../image/names.js";

const USAGE = "bhatti serve [--data-dir DIR] [--listen HOST:PORT] [--engine ns|vm|auto] [--rate-limit N] [--image NAME]";

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    listen: { type: "string" },
    "rate-limit": { type: "string" },
    engine: { type: "string" },
    image: { type: "string" }, // default image of sandboxes and templates that name none
  }, { usage: USAGE });
  const image = values.image ?? process.env.BHATTI_IMAGE;
  if (image !== undefined && !NAME_RE.test(image)) throw new UsageError(`--image must be an image name (${NAME_RE.source})\nusage: ${USAGE}`);
  const engine = values.engine ?? process.env.BHATTI_ENGINE ?? "auto";
  if (engine !== "ns" && engine !== "vm" && engine !== "auto") throw new UsageError(`--engine must be ns, vm or auto\nusage: ${USAGE}`);
  const rate = values["rate-limit"] === undefined ? 100 : Number(values["rate-limit"]);
  if (!Number.isFinite(rate) || rate < 0) throw new Error("--rate-limit must be a number of requests per second (0 disables it)");
  // Signals are caught from the start: one that arrives while the daemon is
  // still starting (or just after it said "listening") still gets a clean stop.
  let signalled!: () => void;
  const stopRequested = new Promise<void>((resolve) => { signalled = resolve; });
  process.once("SIGINT", signalled);
  process.once("SIGTERM", signalled);
  const daemon = await serve({
    dataDir: resolveDataDir(values["data-dir"]),
    listen: values.listen ?? process.env.BHATTI_LISTEN ?? "127.0.0.1:8080",
    rateLimit: rate,
    engine,
    ...(image ? { image: canonicalImage(image) } : {}),
  });
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
