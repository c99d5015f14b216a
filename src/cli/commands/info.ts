// `bhatti info`: what the daemon runs on (version, engines, accelerator).
import { parse } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";

export async function infoCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {}, { usage: "bhatti info [--json]" });
  const client = clientFrom(values);
  const h = await client.health();
  if (values.json) { printJson({ url: client.url, ...h }); return 0; }
  process.stdout.write(`daemon   ${client.url} (bhatti ${h.version})\nengine   ${h.engine}\n`);
  for (const [name, st] of Object.entries((h.engines ?? {}) as Record<string, { available: boolean; accel?: string; reason?: string }>)) {
    process.stdout.write(`  ${name.padEnd(4)} ${st.available ? "available" : "unavailable"}${st.accel ? `, accelerator ${st.accel}` : ""}${st.reason ? ` (${st.reason})` : ""}\n`);
  }
  return 0;
}
