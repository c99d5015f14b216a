// Templates: named, per-user presets of image, size, env and secret NAMES.
import { randomBytes } from "node:crypto";
import type { DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { UserError, badRequest, conflict, notFound } from "../util/errors.js";
import type { Caller } from "../secrets/service.js";
import { DEFAULT_IMAGE } from "../image/names.js";
import { requireImage } from "./images.js";
import { validateCpus, validateEnv, validateMemory, validateName } from "./validate.js";
import { validateSecretRefs, type SecretFileRef } from "./secret-files.js";
import { validateNetwork, type Egress, type NetworkPolicy } from "../net/policy.js";
import { requireWithinCap } from "../net/cap.js";

export interface Template {
  id: string;
  name: string;
  image: string;
  cpus: number;
  memory_mb: number;
  env: Record<string, string>;
  secrets: string[];
  secret_files: SecretFileRef[];
  network: NetworkPolicy | null; // null: sandboxes made from it get the daemon's default
  created_at: string;
}

interface Row { id: string; name: string; image: string; cpus: number; memory_mb: number; env: string; secrets: string; secret_files: string; network: string | null; created_at: string }

const toTemplate = (r: Row): Template => ({ ...r, env: JSON.parse(r.env), secrets: JSON.parse(r.secrets), secret_files: JSON.parse(r.secret_files), network: r.network ? JSON.parse(r.network) as NetworkPolicy : null });
const COLUMNS = "id, name, image, cpus, memory_mb, env, secrets, secret_files, network, created_at";

export const DEFAULTS = { image: DEFAULT_IMAGE, cpus: 1, memory_mb: 512 };

export class TemplateService {
  /**
   * imagesDir: where a template's image must be built (unset: names are only checked for form).
   * defaultImage: the image of a template or sandbox that names none (`serve --image`).
   */
  constructor(private readonly db: DB, private readonly imagesDir?: string, readonly defaultImage: string = DEFAULT_IMAGE) {}

  create(user: Caller & { max_egress?: Egress }, body: Record<string, unknown>): Template {
    const name = validateName(body.name, "name");
    let image = body.image === undefined ? this.defaultImage : validateName(body.image, "image");
    if (this.imagesDir !== undefined) image = requireImage(this.imagesDir, image);
    const cpus = body.cpus === undefined ? DEFAULTS.cpus : validateCpus(body.cpus);
    const memory_mb = body.memory_mb === undefined ? DEFAULTS.memory_mb : validateMemory(body.memory_mb);
    const env = validateEnv(body.env);
    // Secret names are checked when a sandbox is created from the template, in the requesting user's store.
    const { env: secrets, files: secret_files } = validateSecretRefs(body.secrets);
    const network = body.network === undefined || body.network === null ? null : validateNetwork(body.network, { egress: "public", allow_hosts: [], allow_cidrs: [] });
    // A template carrying a policy over its owner's egress cap could never be used: refused now, as a create would be.
    if (network && user.max_egress) requireWithinCap(network, user.max_egress, "template");
    const t: Template = { id: "tpl_" + randomBytes(8).toString("hex"), name, image, cpus, memory_mb, env, secrets, secret_files, network, created_at: new Date().toISOString() };
    this.db.transaction(() => {
      if (this.db.prepare("SELECT 1 FROM templates WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`template ${JSON.stringify(name)} already exists`, "name_taken");
      this.db.prepare("INSERT INTO templates (id, user_id, name, image, cpus, memory_mb, env, secrets, secret_files, network, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .run(t.id, user.id, name, image, cpus, memory_mb, JSON.stringify(env), JSON.stringify(secrets), JSON.stringify(secret_files), network ? JSON.stringify(network) : null, t.created_at);
      recordEvent(this.db, "template.created", user.name, name);
    })();
    return t;
  }

  list(user: Caller): Template[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM templates WHERE user_id = ? ORDER BY name`).all(user.id) as Row[]).map(toTemplate);
  }

  /** By id or name, the caller's own only. */
  find(user: Caller, ref: string): Template | undefined {
    const r = this.db.prepare(`SELECT ${COLUMNS} FROM templates WHERE user_id = ? AND (id = ? OR name = ?)`).get(user.id, ref, ref) as Row | undefined;
    return r && toTemplate(r);
  }

  get(user: Caller, ref: string): Template {
    const t = this.find(user, ref);
    if (!t) throw notFound(`template ${JSON.stringify(ref)} not found`, "template_not_found");
    return t;
  }

  delete(user: Caller, ref: string): void {
    const t = this.get(user, ref);
    this.db.prepare("DELETE FROM templates WHERE id = ?").run(t.id);
    recordEvent(this.db, "template.deleted", user.name, t.name);
  }

  /** For sandbox create: a template reference that does not resolve is a 400, like an unknown secret. */
  resolve(user: Caller, ref: unknown): Template {
    if (typeof ref !== "string" || ref === "") throw badRequest("template must be a template id or name");
    const t = this.find(user, ref);
    if (!t) throw new UserError(400, `template ${JSON.stringify(ref)} not found`, {}, "template_not_found");
    return t;
  }
}
