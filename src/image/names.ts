// Image names: which images bhatti knows how to build, the default, and the
// old name `base` (today's busybox image, now called `minimal`), kept as an
// alias so existing sandboxes, templates and scripts keep working.

export const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Images `bhatti image build NAME` knows how to make from scratch. */
export const RECIPES = ["minimal", "debian"] as const;
export type RecipeName = (typeof RECIPES)[number];

export const ALIASES: Record<string, string> = { base: "minimal" };

/** The image a sandbox gets when neither the request nor its template names one (`serve --image` overrides it). */
export const DEFAULT_IMAGE = "debian";

/**
 * The writable disk (MiB) a sandbox of this image gets when the request names
 * no `disk_mb`: the busybox image needs little; a Debian userland (and derived
 * or imported ones) room for packages, checkouts and builds. Sparse: a
 * sandbox uses host disk only for what it writes, up to this size.
 */
export function defaultDiskMb(image: string): number {
  return canonicalImage(image) === "minimal" ? 1024 : 4096;
}

/** The canonical name of an image (an alias resolved); the name itself otherwise. */
export function canonicalImage(name: string): string {
  return Object.hasOwn(ALIASES, name) ? ALIASES[name] : name;
}

export function checkImageName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`bad image name ${JSON.stringify(name)} (want ${NAME_RE.source})`);
}

export function isRecipe(name: string): name is RecipeName {
  return (RECIPES as readonly string[]).includes(name);
}
