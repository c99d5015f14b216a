// Test support: the images dir tests use (BHATTI_IMAGES_DIR, default
// /var/lib/bhatti-test/images), with the minimal image built there if missing
// or out of date (buildImage is idempotent and quick when nothing changed).
import { buildImage } from "../../image/build.js";

export const TEST_IMAGES_DIR = process.env.BHATTI_IMAGES_DIR ?? "/var/lib/bhatti-test/images";

let built: Promise<string> | undefined;

export function ensureTestImage(): Promise<string> {
  built ??= buildImage({ imagesDir: TEST_IMAGES_DIR, name: "minimal" }).then(() => TEST_IMAGES_DIR);
  return built;
}

let debianBuilt: Promise<string> | undefined;

/** The debian image in the test images dir: built by the first run (about a minute), then reused while its inputs hash holds. */
export function ensureDebianTestImage(): Promise<string> {
  debianBuilt ??= buildImage({ imagesDir: TEST_IMAGES_DIR, name: "debian", log: (l) => process.stderr.write(`# image: ${l}\n`) }).then(() => TEST_IMAGES_DIR);
  return debianBuilt;
}
