// What build.ts asks of each kind of image: the inputs hash a build would have
// now (to skip a build whose inputs are unchanged) and the build itself.
import type { HashCache } from "./hashes.js";
import type { Manifest } from "./types.js";

export interface RecipeContext {
  name: string;
  imagesDir: string;
  cacheDir: string;
  nodeBinary: string;
  loharJs: string;
  vm: boolean;
  log: (line: string) => void;
  started: number;
  hashes: HashCache;
}

export interface Recipe {
  /** The inputs hash a build would produce now, given the current image's manifest (null: none built). */
  currentHash(existing: Manifest | null): Promise<string>;
  /** Builds the image into `dir` (which must not exist) and returns its manifest (also written there). */
  assemble(dir: string): Promise<Manifest>;
}
