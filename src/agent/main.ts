// lohar: the guest agent. Started as `node /opt/bhatti/lohar.js` with an empty
// environment, PID 2 under tini. Reads the config drive, removes it, then
// serves the host protocol (src/protocol/agent.ts).
import { performance } from "node:perf_hooks";
import { parseArgs } from "./args.js";
import { boot } from "./boot.js";
import { serveUnix } from "./unix.js";
import { serveVirtio } from "./virtio.js";
import { log } from "./log.js";

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sandbox = await boot(args);
  const bootMs = Math.round(performance.now());
  if (args.transport === "unix") await serveUnix(args.socket, sandbox, bootMs);
  else await serveVirtio(args.device, sandbox, bootMs);
  log(`ready in ${bootMs} ms`);
}

process.on("SIGPIPE", () => {});
// A bug in one request must not take the sandbox down. Log the kind only: a
// message could in theory quote data.
process.on("uncaughtException", (e: unknown) => {
  log(`internal error: ${(e as Error)?.name ?? "unknown"} ${(e as NodeJS.ErrnoException)?.code ?? ""}`.trimEnd());
});
main().catch((e: unknown) => {
  // Messages here are built by lohar itself and carry no config values.
  log(`fatal: ${e instanceof Error ? e.message : "unknown error"}`);
  process.exit(1);
});
