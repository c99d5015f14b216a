// bench/cli: how long the CLI takes to start and answer, beside a bare
// `node -e ''` measured in the same run. Every sample is a fresh process
// (spawnSync of bin/bhatti, as a user runs it). Run: bench/cli [--runs N]
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { BIN, REPO, cleanup, createUser, startDaemon } from "../src/testing/harness.js";
import { printTable, timeit, machine, type Row } from "./stats.js";

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 30;
const REF = "ref: node -e ''";

function proc(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): () => void {
  return () => {
    const r = spawnSync(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  };
}

async function main(): Promise<void> {
  const d = await startDaemon();
  const env = { ...process.env, BHATTI_URL: d.url, BHATTI_TOKEN: createUser(d.dataDir, "bench"), HOME: d.dataDir };
  const dist = join(REPO, "dist/src");
  const rows: Row[] = [];
  try {
    process.stdout.write(`bench/cli on ${machine()}, ${new Date().toISOString()}\n\n`);
    rows.push({ name: REF, samples: await timeit(runs, proc("node", ["-e", ""]), 3) });
    rows.push({ name: "ref: node importing the API client only", samples: await timeit(runs, proc("node", ["--input-type=module", "-e", `await import(${JSON.stringify(join(dist, "client/index.js"))})`]), 3), ref: REF });
    rows.push({ name: "ref: node importing the daemon's modules (what every command loaded before)", samples: await timeit(runs, proc("node", ["--input-type=module", "-e", `await import(${JSON.stringify(join(dist, "server/daemon.js"))})`]), 3), ref: REF });
    rows.push({ name: "bhatti --version", samples: await timeit(runs, proc(BIN, ["--version"]), 3), ref: REF });
    rows.push({ name: "bhatti create --help", samples: await timeit(runs, proc(BIN, ["create", "--help"]), 3), ref: REF });
    rows.push({ name: "bhatti list (running daemon, empty)", samples: await timeit(runs, proc(BIN, ["list"], env), 3), ref: REF, target: "close to the client-only ref" });
    rows.push({ name: "bhatti whoami (running daemon)", samples: await timeit(runs, proc(BIN, ["whoami"], env), 3), ref: REF });
    printTable("CLI start", rows);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
}

await main();
