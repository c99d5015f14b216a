// `bhatti net show|set SB`: a sandbox's egress policy; and the --egress,
// --allow-host, --allow-cidr flags `create` shares with it.
import type { Command } from "commander";
import { clientOptions, repeatable, run, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { clientFrom } from "../client.js";
import type { NetworkSpec } from "../../client/index.js";

const USAGE = "bhatti net show SB [--json] | bhatti net set SB [--egress public|deny|none] [--allow-host H]... [--allow-cidr C]... [--json]";

export interface NetOpts { egress?: string; allowHost?: string[]; allowCidr?: string[] }

/** The policy flags `create`, `template create` and `net set` share. */
export function netOptions(cmd: Command): Command {
  return cmd
    .option("--egress <public|deny|none>", "outbound network policy (default: the daemon's --default-egress)")
    .addOption(repeatable("--allow-host <host>", "with deny: a host name the sandbox may reach (api.example.com or *.example.com; repeatable)"))
    .addOption(repeatable("--allow-cidr <cidr>", "a range the sandbox may reach, private ones included (repeatable)"));
}

export function networkSpec(o: NetOpts): NetworkSpec | undefined {
  const v = { egress: o.egress, "allow-host": o.allowHost, "allow-cidr": o.allowCidr };
  if (v.egress === undefined && !v["allow-host"] && !v["allow-cidr"]) return undefined;
  if (v.egress !== undefined && !["public", "deny", "none"].includes(v.egress)) throw new UsageError(`--egress must be public, deny or none`);
  return {
    ...(v.egress ? { egress: v.egress as NetworkSpec["egress"] } : {}),
    ...(v["allow-host"] ? { allow_hosts: v["allow-host"] } : {}),
    ...(v["allow-cidr"] ? { allow_cidrs: v["allow-cidr"] } : {}),
  };
}

interface Conn { url?: string; token?: string; json?: boolean }

function show(n: Required<NetworkSpec>, json?: boolean): number {
  if (json) printJson(n);
  else process.stdout.write(`egress ${n.egress}\n${n.allow_hosts.map((h) => `allow-host ${h}\n`).join("")}${n.allow_cidrs.map((c) => `allow-cidr ${c}\n`).join("")}`);
  return 0;
}

export function register(cmd: Command): void {
  clientOptions(cmd.command("show").description("a sandbox's egress policy").argument("<sandbox>", "sandbox name or id"))
    .action(run(async (ref: string, o: Conn) => show((await clientFrom(o).getSandbox(ref) as unknown as { network: Required<NetworkSpec> }).network, o.json)));
  netOptions(clientOptions(cmd.command("set").description("change a running sandbox's egress policy (applies to new connections within a second)")
    .argument("<sandbox>", "sandbox name or id")))
    .action(run(async (ref: string, o: Conn & NetOpts) => {
      const spec = networkSpec(o);
      if (!spec) throw new UsageError(`net set needs --egress, --allow-host or --allow-cidr\nusage: ${USAGE}`);
      return show((await clientFrom(o).setNetwork(ref, spec) as unknown as { network: Required<NetworkSpec> }).network, o.json);
    }));
}
