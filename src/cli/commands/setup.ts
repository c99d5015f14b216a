// `bhatti setup`: check a url + key against the daemon, then save them.
import type { Command } from "commander";
import { clientOptions, run, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { BhattiClient } from "../../client/index.js";
import { configPath, resolveConnection, writeConfig } from "../config.js";

export function register(cmd: Command): void {
  clientOptions(cmd).action(run(async (o: { url?: string; token?: string; json?: boolean }) => {
    const { url, token } = resolveConnection(o);
    if (!token) throw new UsageError("--token is required");
    const client = new BhattiClient({ url, token });
    await client.health();
    await client.listSecrets(); // proves the key is valid
    writeConfig({ url, token });
    if (o.json) printJson({ url, config: configPath() });
    else process.stdout.write(`connected to ${url}; saved to ${configPath()}\n`);
    return 0;
  }));
}
