// lohar: the guest agent. Started as `node /opt/bhatti/lohar.js` with an empty
// environment, PID 2 under tini. Reads the config drive, removes it, then
// serves the host protocol (src/protocol/agent.ts).
import { parseArgs } from "./args.js";
import { boot } from "./boot.js";
import { serveUnix } from "./unix.js";
import { serveVirtio } from "./virtio.js";
import { log } from "./log.js";

// Milliseconds since the process started (process.uptime: node:perf_hooks would cost a module load at boot).
const sinceStart = () => Math.round(process.uptime() * 1000);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.transport === "unix") {
    // The socket listens while the boot finishes (the drive's umount runs meanwhile);
    // a connection is answered only once the boot is done (serveUnix).
    const ready = boot(args).then((sandbox) => ({ sandbox, bootMs: sinceStart() }));
    ready.catch(() => {}); // awaited below: a failed boot is fatal there
    await serveUnix(args.socket, ready);
    log(`ready in ${(await ready).bootMs} ms`);
    return;
  }
  const sandbox = await boot(args);
  const bootMs = sinceStart();
  await serveVirtio(args.device, sandbox, bootMs);
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
