// `bhatti image build`: an operator command that builds the guest image locally.
import { resolve } from "node:path";
import { parse, UsageError } from "../args.js";
import { printJson } from "../output.js";
import { resolveDataDir, ensureDataDir, dataPaths } from "../../util/paths.js";
import { buildImage } from "../../image/build.js";

const USAGE = "bhatti image build [--data-dir DIR] [--images-dir DIR] [--name base] [--force] [--no-vm] [--json]";

export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "build") throw new UsageError(`usage: ${USAGE}`);
  const { values } = parse(rest, { "images-dir": { type: "string" }, name: { type: "string" }, force: { type: "boolean" }, "no-vm": { type: "boolean" } }, { usage: USAGE });
  const imagesDir = values["images-dir"] ? resolve(values["images-dir"]) : dataPaths(ensureDataDir(resolveDataDir(values["data-dir"]))).images;
  const t = performance.now();
  const info = await buildImage({
    imagesDir, name: values.name ?? "base", force: !!values.force, vm: !values["no-vm"],
    log: values.json ? () => {} : (l) => process.stdout.write(`image: ${l}\n`),
  });
  if (values.json) printJson(info);
  else process.stdout.write(`image ${info.name} ${info.rebuilt ? "built" : "up to date"} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${info.dir}\n`);
  return 0;
}
