// Images as sandboxes and templates use them: which image a request names
// (checked against the images dir: an unknown one is a 400 naming it), and
// who still uses an image (so `image delete` can refuse).
import { imageExists } from "../image/catalog.js";
import { canonicalImage, NAME_RE } from "../image/names.js";
import type { DB } from "../store/db.js";
import { badRequest } from "../util/errors.js";

/** The canonical name of a requested image that is built here; a 400 naming the image otherwise. */
export function requireImage(imagesDir: string, requested: unknown): string {
  if (typeof requested !== "string" || !NAME_RE.test(requested)) throw badRequest(`image must be an image name (${NAME_RE.source})`);
  if (!imageExists(imagesDir, requested)) throw badRequest(`image ${JSON.stringify(requested)} not found (GET /images lists the images)`);
  return canonicalImage(requested);
}

/** Sandboxes and templates (of any user) naming image `name` or one of its aliases. */
export function imageUsers(db: DB, name: string): string[] {
  const n = canonicalImage(name);
  const hit = (img: string): boolean => canonicalImage(img) === n;
  const sandboxes = db.prepare("SELECT s.name AS name, u.name AS owner, s.image AS image FROM sandboxes s JOIN users u ON u.id = s.user_id").all() as { name: string; owner: string; image: string }[];
  const templates = db.prepare("SELECT t.name AS name, u.name AS owner, t.image AS image FROM templates t JOIN users u ON u.id = t.user_id").all() as { name: string; owner: string; image: string }[];
  return [
    ...sandboxes.filter((r) => hit(r.image)).map((r) => `sandbox ${r.owner}/${r.name}`),
    ...templates.filter((r) => hit(r.image)).map((r) => `template ${r.owner}/${r.name}`),
  ];
}
