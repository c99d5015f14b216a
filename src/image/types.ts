// The image builder's public types (re-exported by build.ts).

export interface BuildOptions {
  imagesDir: string;
  name?: string; // "minimal" (alias "base"), "debian", or a derived image (with from + packages, or built before)
  /** A derived image: the image it adds packages to ("debian"). */
  from?: string;
  /** A derived image's extra Debian packages. */
  packages?: string[];
  force?: boolean;
  log?: (line: string) => void;
  vm?: boolean; // also build vm artifacts (rootfs.ext4 is always built), default true
  /** Download/extract cache; default <imagesDir>/.cache. Tests share one across runs. */
  cacheDir?: string;
  /** lohar bundle to install; default <repo>/dist/lohar.js. */
  loharJs?: string;
  /** Node binary to install; default process.execPath. */
  nodeBinary?: string;
  /** How long to wait for another process building the same image; default 15 min. */
  lockTimeoutMs?: number;
}

export interface ImageInfo {
  name: string;
  dir: string;
  rootfs: string;
  rootfsExt4?: string;
  kernel?: string;
  initramfs?: string;
  inputsHash: string;
  builtAt: string;
  rebuilt: boolean;
}

export interface ManifestFile { path: string; size: number }

export interface Manifest {
  name: string;
  inputsHash: string;
  inputs: Record<string, unknown>;
  builtAt: string;
  buildMs: number;
  rootfs: { files: number; bytes: number };
  files: ManifestFile[]; // artifacts next to rootfs/, with sizes
  /** Debian images: every installed package and its version. */
  packages?: Record<string, string>;
}
