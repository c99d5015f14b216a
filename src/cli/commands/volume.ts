// `bhatti volume create NAME --size MB | list | delete NAME` (issue 14).
import type { Command } from "commander";
import { clientOptions, intOption, run } from "../args.js";
import { printJson, printTable } from "../output.js";
import { clientFrom } from "../client.js";

interface Conn { url?: string; token?: string; json?: boolean }

export function register(cmd: Command): void {
  clientOptions(cmd.command("create").description("create a persistent volume (ext4) that outlives sandboxes")
    .argument("<name>", "volume name").requiredOption("--size <mb>", "size in MiB"))
    .action(run(async (name: string, o: Conn & { size: string }) => {
      const v = await clientFrom(o).createVolume(name, intOption("size", o.size, 0));
      if (o.json) printJson(v);
      else process.stdout.write(`created volume ${v.name} (${v.size_mb} MiB)\n`);
      return 0;
    }));
  clientOptions(cmd.command("list").description("list your volumes")).action(run(async (o: Conn) => {
    const list = await clientFrom(o).listVolumes();
    if (o.json) printJson(list);
    else printTable(["NAME", "SIZE_MB", "ATTACHED_TO", "CREATED"], list.map((v) => [v.name, v.size_mb, v.attached_to ?? "-", v.created_at]));
    return 0;
  }));
  clientOptions(cmd.command("delete").description("delete a volume (refused while attached)").argument("<name>", "volume name"))
    .action(run(async (name: string, o: Conn) => {
      await clientFrom(o).deleteVolume(name);
      if (o.json) printJson({ name, deleted: true });
      else process.stdout.write(`deleted volume ${name}\n`);
      return 0;
    }));
}
