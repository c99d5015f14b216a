// `bhatti snapshot create SB [--name N] | list | delete NAME` (issue 14).
import type { Command } from "commander";
import { clientOptions, run } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

interface Conn { url?: string; token?: string; json?: boolean }

export function register(cmd: Command): void {
  clientOptions(cmd.command("create").description("snapshot a sandbox's filesystem (create --from NAME forks it)")
    .argument("<sandbox>", "sandbox name or id").option("--name <name>", "snapshot name (default: generated)"))
    .action(run(async (ref: string, o: Conn & { name?: string }) => {
      const s = await clientFrom(o).createSnapshot(ref, o.name);
      if (o.json) printJson(s);
      else process.stdout.write(`created snapshot ${s.name} of ${s.sandbox}\n`);
      return 0;
    }));
  clientOptions(cmd.command("list").description("list your snapshots")).action(run(async (o: Conn) => {
    const list = await clientFrom(o).listSnapshots();
    if (o.json) printJson(list);
    else printTable(["NAME", "SANDBOX", "ENGINE", "IMAGE", "CREATED"], list.map((s) => [s.name, s.sandbox, s.engine, s.image, s.created_at]));
    return 0;
  }));
  clientOptions(cmd.command("delete").description("delete a snapshot").argument("<name>", "snapshot name"))
    .action(run(async (name: string, o: Conn) => {
      await clientFrom(o).deleteSnapshot(name);
      if (o.json) printJson({ name, deleted: true });
      else process.stdout.write(`deleted snapshot ${name}\n`);
      return 0;
    }));
}
