// `bhatti net show|set SB`: a sandbox's egress policy; and the --egress,
// --allow-host, --allow-cidr flags `create` shares with it.
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";
import type { NetworkSpec } from "../../client/index.js";

const USAGE = "bhatti net show SB [--json] | bhatti net set SB [--egress public|deny|none] [--allow-host H]... [--allow-cidr C]... [--json]";

export const NET_OPTIONS = {
  egress: { type: "string" },
  "allow-host": { type: "string", multiple: true },
  "allow-cidr": { type: "string", multiple: true },
} as const;

export function networkSpec(v: { egress?: string; "allow-host"?: string[]; "allow-cidr"?: string[] }): NetworkSpec | undefined {
  if (v.egress === undefined && !v["allow-host"] && !v["allow-cidr"]) return undefined;
  if (v.egress !== undefined && !["public", "deny", "none"].includes(v.egress)) throw new UsageError(`--egress must be public, deny or none`);
  return {
    ...(v.egress ? { egress: v.egress as NetworkSpec["egress"] } : {}),
    ...(v["allow-host"] ? { allow_hosts: v["allow-host"] } : {}),
    ...(v["allow-cidr"] ? { allow_cidrs: v["allow-cidr"] } : {}),
  };
}

export async function netCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "show" && sub !== "set") throw new UsageError(`usage: ${USAGE}`);
  const { values, positionals } = parse(rest, { ...NET_OPTIONS }, { usage: USAGE, positionals: [1, 1] });
  const ref = positionals[0];
  if (!ref || positionals.length > 1) throw new UsageError(`name one sandbox\nusage: ${USAGE}`);
  const client = clientFrom(values);
  let sb;
  if (sub === "set") {
    const spec = networkSpec(values);
    if (!spec) throw new UsageError(`net set needs --egress, --allow-host or --allow-cidr\nusage: ${USAGE}`);
    sb = await client.setNetwork(ref, spec);
  } else {
    sb = await client.getSandbox(ref);
  }
  const n = (sb as unknown as { network: Required<NetworkSpec> }).network;
  if (values.json) printJson(n);
  else process.stdout.write(`egress ${n.egress}\n${n.allow_hosts.map((h) => `allow-host ${h}\n`).join("")}${n.allow_cidrs.map((c) => `allow-cidr ${c}\n`).join("")}`);
  return 0;
}
