// `bhatti image build|import|list|inspect|delete`: operator commands on the
// local images dir (the daemon serves the same list at GET /images).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Command as Cmd, type Command } from "commander";
import { operatorOptions, repeatable, run, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { progressLine } from "../progress.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";

interface ImageOpts { dataDir?: string; imagesDir?: string; json?: boolean; force?: boolean; vm?: boolean; from?: string; packages?: string[]; tar?: string }

const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;

function imagesOf(o: ImageOpts): string {
  return o.imagesDir ? resolve(o.imagesDir) : dataPaths(ensureDataDir(resolveDataDir(o.dataDir))).images;
}

function withDirs(c: Cmd): Cmd {
  return operatorOptions(c).option("--images-dir <dir>", "images dir (default: $BHATTI_IMAGES_DIR or DATA_DIR/images)");
}

export function register(cmd: Command): void {
  withDirs(cmd.command("build").description("build a guest image from a recipe (progress on stderr when it is a terminal)")
    .argument("[name]", "recipe: minimal (busybox), debian, or a new name with --from debian")
    .option("--force", "rebuild even when the inputs have not changed")
    .option("--no-vm", "skip the VM boot files (ns engine only)")
    .option("--from <base>", "base recipe for a custom image (debian)")
    .addOption(repeatable("--packages <list>", "Debian packages to add, space or comma separated (repeatable)")))
    .action(run(async (n: string | undefined, o: ImageOpts) => {
      const { buildImage } = await import("../../image/build.js");
      const { DEFAULT_IMAGE } = await import("../../image/names.js");
      const t = performance.now();
      const info = await buildImage({
        imagesDir: imagesOf(o), name: n ?? DEFAULT_IMAGE, force: !!o.force, vm: o.vm !== false,
        ...(o.from !== undefined ? { from: o.from } : {}),
        ...(o.packages ? { packages: o.packages.flatMap((p) => p.split(/[\s,]+/)).filter(Boolean) } : {}),
        log: (l) => progressLine(`image: ${l}`),
      });
      if (o.json) printJson(info);
      else process.stdout.write(`image ${info.name} ${info.rebuilt ? "built" : "up to date"} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${info.dir}\n`);
      return 0;
    }));
  withDirs(cmd.command("import").description("import a root filesystem tarball (e.g. docker export; gz/xz/zst ok)")
    .argument("<name>", "name of the new image")
    .requiredOption("--tar <file>", "the tarball")
    .option("--force", "replace an image of that name")
    .option("--no-vm", "skip the VM boot files (ns engine only)"))
    .action(run(async (n: string, o: ImageOpts) => {
      const { importImage } = await import("../../image/import.js");
      const t = performance.now();
      const info = await importImage({
        imagesDir: imagesOf(o), name: n, tar: resolve(o.tar!), force: !!o.force, vm: o.vm !== false,
        log: (l) => progressLine(`image: ${l}`),
      });
      if (o.json) printJson(info);
      else process.stdout.write(`image ${info.name} ${info.rebuilt ? "imported" : "up to date"} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${info.dir}\n`);
      return 0;
    }));
  withDirs(cmd.command("list").description("list built images"))
    .action(run(async (o: ImageOpts) => {
      const { listImages } = await import("../../image/catalog.js");
      const list = await listImages(imagesOf(o));
      if (o.json) printJson(list);
      else printTable(["NAME", "ALIASES", "ENGINES", "SIZE", "DISK", "PACKAGES", "BUILT"], list.map((i) => [
        i.name + (i.default ? " (default)" : ""), i.aliases.join(",") || "-", i.engines.join(","), mib(i.size_bytes), `${i.default_disk_mb} MiB`, String(i.packages || "-"), i.built_at,
      ]));
      return 0;
    }));
  withDirs(cmd.command("inspect").description("show an image's manifest (JSON)").argument("<name>", "image name"))
    .action(run(async (n: string, o: ImageOpts) => {
      const { inspectImage } = await import("../../image/catalog.js");
      const d = await inspectImage(imagesOf(o), n);
      if (!d) throw new UsageError(`image ${n} is not built (bhatti image list shows what is)`);
      printJson(d);
      return 0;
    }));
  withDirs(cmd.command("delete").description("delete an image no sandbox or template uses").argument("<name>", "image name"))
    .action(run(async (n: string, o: ImageOpts) => {
      const { deleteImage } = await import("../../image/catalog.js");
      const { imageUsers } = await import("../../sandboxes/images.js");
      const { openDb } = await import("../../store/db.js");
      const imagesDir = imagesOf(o);
      // refused while a sandbox or template of this daemon's database names it
      const db = dataPaths(ensureDataDir(resolveDataDir(o.dataDir))).db;
      const users = existsSync(db) ? imageUsers(openDb(db), n) : [];
      await deleteImage(imagesDir, n, users);
      if (!o.json) process.stdout.write(`image ${n} deleted\n`);
      else printJson({ deleted: n });
      return 0;
    }));
}
