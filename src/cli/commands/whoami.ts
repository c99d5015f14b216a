// `bhatti whoami`: who the API key belongs to, its quotas and what is in use.
import type { Command } from "commander";
import { clientOptions, run } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";

export function register(cmd: Command): void {
  clientOptions(cmd).action(run(async (o: { url?: string; token?: string; json?: boolean }) => {
    const me = await clientFrom(o).me();
    if (o.json) { printJson(me); return 0; }
    const q = me.quotas, u = me.usage;
    process.stdout.write(`user       ${me.name}\n` +
      `sandboxes  ${u.sandboxes} of ${q.max_sandboxes}\n` +
      `cpus       ${u.cpus} of ${q.max_cpus}\n` +
      `memory     ${u.memory_mb} of ${q.max_memory_mb} MiB\n` +
      `disk       ${u.disk_mb} of ${q.max_disk_mb} MiB\n` +
      `egress     at most ${q.max_egress}\n` +
      `secrets    ${u.secrets}\ntemplates  ${u.templates}\n`);
    return 0;
  }));
}
