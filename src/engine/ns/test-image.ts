// Test support: the images dir tests use (BHATTI_IMAGES_DIR, default
// /var/lib/bhatti-test/images), with the base image built there if missing
// or out of date (buildImage is idempotent and quick when nothing changed).
import { buildImage } from "../../image/build.js";

export const TEST_IMAGES_DIR = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";

let built: Promise<string> | undefined;

export function ensureTestImage(): Promise<string> {
  built ??= buildImage({ imagesDir: TEST_IMAGES_DIR }).then(() => TEST_IMAGES_DIR);
  return built;
}
