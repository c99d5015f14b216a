// `bhatti info`: what the daemon runs on (version, engines, accelerator).
import type { Command } from "commander";
import { clientOptions, run } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";

export function register(cmd: Command): void {
  clientOptions(cmd).action(run(async (o: { url?: string; token?: string; json?: boolean }) => {
    const client = clientFrom(o);
    const h = await client.health();
    if (o.json) { printJson({ url: client.url, ...h }); return 0; }
    process.stdout.write(`daemon   ${client.url} (bhatti ${h.version})\nengine   ${h.engine}\n`);
    for (const [name, st] of Object.entries((h.engines ?? {}) as Record<string, { available: boolean; accel?: string; reason?: string }>)) {
      process.stdout.write(`  ${name.padEnd(4)} ${st.available ? "available" : "unavailable"}${st.accel ? `, accelerator ${st.accel}` : ""}${st.reason ? ` (${st.reason})` : ""}\n`);
    }
    return 0;
  }));
}
