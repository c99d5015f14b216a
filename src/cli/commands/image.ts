// `bhatti image build|list|inspect|delete`: operator commands on the local
// images dir (the daemon serves the same list at GET /images).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parse, UsageError } from "../args.js";
import { printJson, printTable } from "../output.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";
import { buildImage } from "../../image/build.js";
import { deleteImage, inspectImage, listImages } from "../../image/catalog.js";
import { importImage } from "../../image/import.js";
import { DEFAULT_IMAGE, RECIPES } from "../../image/names.js";
import { imageUsers } from "../../sandboxes/images.js";
import { openDb } from "../../store/db.js";

const USAGE = `bhatti image build [NAME] [--force] [--no-vm]   (NAME: ${RECIPES.join(" | ")}; default ${DEFAULT_IMAGE}; base = minimal)
       bhatti image build NAME --from debian --packages "PKG …"   (debian plus Debian packages)
       bhatti image import NAME --tar FILE [--force] [--no-vm]   (a root filesystem tarball, e.g. docker export; gz/xz/zst ok)
       bhatti image list | inspect NAME | delete NAME
       options: [--data-dir DIR] [--images-dir DIR] [--json]`;

const OPTIONS = {
  "images-dir": { type: "string" }, name: { type: "string" }, force: { type: "boolean" }, "no-vm": { type: "boolean" },
  from: { type: "string" }, packages: { type: "string", multiple: true }, tar: { type: "string" },
} as const;

const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;

export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || !["build", "import", "list", "inspect", "delete"].includes(sub)) throw new UsageError(`usage: ${USAGE}`);
  const { values, positionals } = parse(rest, OPTIONS, { usage: USAGE, positionals: sub === "list" ? [0, 0] : sub === "build" ? [0, 1] : [1, 1] });
  const dataDir = () => ensureDataDir(resolveDataDir(values["data-dir"]));
  const imagesDir = values["images-dir"] ? resolve(values["images-dir"]) : dataPaths(dataDir()).images;
  const name = positionals[0] ?? values.name ?? DEFAULT_IMAGE;

  if (sub === "build") {
    const t = performance.now();
    const info = await buildImage({
      imagesDir, name, force: !!values.force, vm: !values["no-vm"],
      ...(values.from !== undefined ? { from: values.from } : {}),
      ...(values.packages ? { packages: values.packages.flatMap((p) => p.split(/[\s,]+/)).filter(Boolean) } : {}),
      log: (l) => process.stderr.write(`image: ${l}\n`), // progress on stderr, the result on stdout
    });
    if (values.json) printJson(info);
    else process.stdout.write(`image ${info.name} ${info.rebuilt ? "built" : "up to date"} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${info.dir}\n`);
    return 0;
  }
  if (sub === "import") {
    if (!values.tar) throw new UsageError(`--tar FILE is required\nusage: ${USAGE}`);
    const t = performance.now();
    const info = await importImage({
      imagesDir, name, tar: resolve(values.tar), force: !!values.force, vm: !values["no-vm"],
      log: (l) => process.stderr.write(`image: ${l}\n`),
    });
    if (values.json) printJson(info);
    else process.stdout.write(`image ${info.name} ${info.rebuilt ? "imported" : "up to date"} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${info.dir}\n`);
    return 0;
  }
  if (sub === "list") {
    const list = await listImages(imagesDir);
    if (values.json) printJson(list);
    else printTable(["NAME", "ALIASES", "ENGINES", "SIZE", "DISK", "PACKAGES", "BUILT"], list.map((i) => [
      i.name + (i.default ? " (default)" : ""), i.aliases.join(",") || "-", i.engines.join(","), mib(i.size_bytes), `${i.default_disk_mb} MiB`, String(i.packages || "-"), i.built_at,
    ]));
    return 0;
  }
  if (sub === "inspect") {
    const d = await inspectImage(imagesDir, name);
    if (!d) throw new UsageError(`image ${name} is not built (bhatti image list shows what is)`);
    printJson(d);
    return 0;
  }
  // delete: refused while a sandbox or template of this daemon's database names it
  const db = dataPaths(dataDir()).db;
  const users = existsSync(db) ? imageUsers(openDb(db), name) : [];
  await deleteImage(imagesDir, name, users);
  if (!values.json) process.stdout.write(`image ${name} deleted\n`);
  else printJson({ deleted: name });
  return 0;
}
