// Sandboxes: validation, caps, templates, env resolution, the config drive's
// contents, and the engine calls. This is the one place plaintext secret values
// leave the secret store: resolved here, handed to the engine inside a
// ConfigDrive, and dropped.
import { randomBytes } from "node:crypto";
import type { DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { UserError, conflict, notFound } from "../util/errors.js";
import type { SecretService } from "../secrets/service.js";
import type { Keyring } from "../secrets/keyring.js";
import type { User } from "../users/service.js";
import type { AgentClient } from "../engine/agent-client.js";
import type { EngineName, RunningSandbox } from "../engine/types.js";
import type { ConfigDrive } from "../protocol/agent.js";
import type { Engines } from "./engines.js";
import { DEFAULTS, type TemplateService } from "./templates.js";
import type { Admission } from "./admission.js";
import { requireImage } from "./images.js";
import { validateCpus, validateDisk, validateEnv, validateFiles, validateMemory, validateName, validateOptionalString, validateSecretNames } from "./validate.js";

export interface SandboxView {
  id: string;
  name: string;
  engine: EngineName;
  image: string;
  cpus: number;
  memory_mb: number;
  status: string;
  env: string[]; // names only
  secrets: string[]; // names only
  template_id: string | null;
  created_at: string;
}

interface Row {
  id: string; user_id: number; name: string; engine: EngineName; image: string; cpus: number; memory_mb: number;
  env_keys: string; secret_names: string; template_id: string | null; status: string;
  token_encrypted: Buffer | null; engine_state: string | null; created_at: string;
}

const view = (r: Row): SandboxView => ({
  id: r.id, name: r.name, engine: r.engine, image: r.image, cpus: r.cpus, memory_mb: r.memory_mb, status: r.status,
  env: JSON.parse(r.env_keys), secrets: JSON.parse(r.secret_names), template_id: r.template_id, created_at: r.created_at,
});

export class SandboxService {
  private readonly live = new Map<string, RunningSandbox>();
  private readonly byRef; // every exec and file call looks a sandbox up

  constructor(
    private readonly db: DB,
    private readonly secrets: SecretService,
    private readonly templates: TemplateService,
    private readonly engines: Engines,
    private readonly keyring: Keyring,
    private readonly log: (line: string) => void,
    private readonly admission?: Admission, // host-wide capacity (admission.ts); none: unlimited
  ) {
    this.byRef = db.prepare("SELECT * FROM sandboxes WHERE user_id = ? AND (id = ? OR name = ?)");
  }

  async create(user: User, body: Record<string, unknown>): Promise<{ sandbox: SandboxView; warnings: string[] }> {
    const warnings: string[] = [];
    const name = validateName(body.name);
    const engine = this.engines.pick(body.engine);
    let image = this.templates.defaultImage;
    let cpus = DEFAULTS.cpus;
    let memory_mb = DEFAULTS.memory_mb;
    let env: Record<string, string> = {};
    let secretNames = validateSecretNames(body.secrets);
    let files = validateFiles(body.files);
    const requestEnv = validateEnv(body.env);
    const init = validateOptionalString(body.init, "init");
    let templateId: string | null = null;

    if (body.template !== undefined && body.template !== null) {
      const t = this.templates.resolve(user, body.template);
      templateId = t.id;
      ({ image, cpus, memory_mb } = t);
      // Like its secrets, a template's image wins over the request's.
      if (body.image !== undefined && body.image !== null && body.image !== t.image) warnings.push(`template ${t.name}: the request's image was dropped; the template's image ${t.image} is used`);
      env = { ...t.env };
      // Creating from a template honours only the template's secrets, and no request files.
      if (secretNames.length) warnings.push(`template ${t.name}: the request's secrets were dropped (${secretNames.join(", ")}); only the template's secrets are used`);
      if (files.length) warnings.push(`template ${t.name}: the request's files were dropped (${files.length} file${files.length === 1 ? "" : "s"}); create without a template to pass files`);
      secretNames = t.secrets;
      files = [];
    } else if (body.image !== undefined && body.image !== null) image = body.image as string; // checked just below
    image = requireImage(this.engines.env.imagesDir, image);
    if (body.cpus !== undefined) cpus = validateCpus(body.cpus);
    if (body.memory_mb !== undefined) memory_mb = validateMemory(body.memory_mb);
    const diskMb = body.disk_mb === undefined || body.disk_mb === null ? undefined : validateDisk(body.disk_mb);
    env = { ...env, ...requestEnv };

    // Resolving secrets also proves they exist: an unknown name (missing or another user's) is a 400 before anything starts.
    const t0 = performance.now();
    const plain = await this.secrets.resolveForSandbox(user, secretNames);
    const t1 = performance.now();

    const id = "sb" + randomBytes(8).toString("hex");
    const token = randomBytes(32).toString("hex");
    const now = new Date().toISOString();
    this.db.transaction(() => {
      const used = this.db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(cpus), 0) AS c, COALESCE(SUM(memory_mb), 0) AS m FROM sandboxes WHERE user_id = ?").get(user.id) as { n: number; c: number; m: number };
      if (used.n + 1 > user.max_sandboxes) throw new UserError(403, `quota exceeded: at most ${user.max_sandboxes} sandboxes (you have ${used.n})`);
      if (used.c + cpus > user.max_cpus) throw new UserError(403, `quota exceeded: at most ${user.max_cpus} cpus in total (${used.c} in use, ${cpus} requested)`);
      if (used.m + memory_mb > user.max_memory_mb) throw new UserError(403, `quota exceeded: at most ${user.max_memory_mb} MiB of memory in total (${used.m} in use, ${memory_mb} requested)`);
      if (this.db.prepare("SELECT 1 FROM sandboxes WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`sandbox ${JSON.stringify(name)} already exists`);
      this.admission?.check(this.db, cpus, memory_mb);
      this.db.prepare(`INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, env_keys, secret_names, template_id, status, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?)`)
        .run(id, user.id, name, engine.name, image, cpus, memory_mb, JSON.stringify(Object.keys(env).sort()), JSON.stringify(secretNames), templateId, now);
    }).immediate();

    // env for every command: secrets, then the sandbox env on top (defaults are applied by lohar underneath).
    const config: ConfigDrive = { sandbox_id: id, hostname: name, token, env: { ...Object.fromEntries(plain), ...env }, files, ...(init ? { init } : {}) };
    plain.clear();
    const tokenBlob = this.keyring.encrypt(token); // overlaps the boot
    let running: RunningSandbox;
    try {
      running = await engine.create({ id, name, image, cpus, memoryMb: memory_mb, ...(diskMb ? { diskMb } : {}), config });
    } catch (e) {
      this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(id);
      this.log(`sandbox ${id} failed to start on ${engine.name}: ${(e as Error).message}`);
      throw new UserError(500, `sandbox failed to start on engine ${engine.name} (the daemon log has details)`);
    } finally {
      config.env = {};
      config.files = [];
    }
    const t2 = performance.now();
    this.db.prepare("UPDATE sandboxes SET status = 'running', engine_state = ?, token_encrypted = ? WHERE id = ?").run(JSON.stringify(running.state), await tokenBlob, id);
    this.attach(running);
    recordEvent(this.db, "sandbox.created", user.name, name, { id, engine: engine.name, secrets: secretNames });
    const t3 = performance.now();
    this.log(`sandbox ${id} (${name}) created on ${engine.name} in ${(t3 - t0).toFixed(0)} ms: secrets ${(t1 - t0).toFixed(1)}, engine ${(t2 - t1).toFixed(1)}, persist ${(t3 - t2).toFixed(1)}`);
    return { sandbox: view(this.row(id)!), warnings };
  }

  list(user: User): SandboxView[] {
    return (this.db.prepare("SELECT * FROM sandboxes WHERE user_id = ? ORDER BY name").all(user.id) as Row[]).map(view);
  }

  /** By id or name; another user's sandbox is simply not found. */
  get(user: User, ref: string): SandboxView {
    return view(this.find(user, ref));
  }

  /** The live agent connection of a running sandbox. */
  agent(user: User, ref: string): AgentClient {
    const r = this.find(user, ref);
    const s = this.live.get(r.id);
    if (!s || s.agent.closed) throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status === "running" ? "unreachable" : r.status})`);
    return s.agent;
  }

  async destroy(user: User, ref: string): Promise<void> {
    const r = this.find(user, ref);
    await this.destroyRow(r);
    recordEvent(this.db, "sandbox.destroyed", user.name, r.name, { id: r.id });
  }

  /** After a daemon restart: reattach live sandboxes, mark dead ones, and remove what no row accounts for. */
  async recover(): Promise<{ reattached: number; dead: number; orphans: number }> {
    const rows = this.db.prepare("SELECT * FROM sandboxes WHERE status IN ('running', 'creating')").all() as Row[];
    let reattached = 0;
    let dead = 0;
    for (const r of rows) {
      let s: RunningSandbox | null = null;
      if (r.status === "running" && r.token_encrypted && r.engine_state) {
        try {
          const token = await this.keyring.decrypt(r.token_encrypted);
          s = await this.engines.get(r.engine).reattach(r.id, JSON.parse(r.engine_state), token);
        } catch (e) {
          this.log(`sandbox ${r.id}: reattach failed: ${(e as Error).message}`);
        }
      }
      if (s) {
        this.attach(s);
        reattached++;
      } else {
        // A sandbox caught mid-create by a crash, or one whose processes died: clean up whatever is left.
        try { await this.engines.get(r.engine).destroy(r.id, r.engine_state ? JSON.parse(r.engine_state) : {}); } catch { /* best effort */ }
        this.db.prepare("UPDATE sandboxes SET status = 'dead' WHERE id = ?").run(r.id);
        recordEvent(this.db, "sandbox.dead", null, r.name, { id: r.id });
        dead++;
      }
    }
    // Sandboxes on the host with no row: their owner was deleted while no daemon ran, or a crash hit between the engine and the database.
    const known = new Set((this.db.prepare("SELECT id FROM sandboxes").all() as { id: string }[]).map((r) => r.id));
    let orphans = 0;
    for (const name of ["ns", "vm"] as const) {
      const engine = this.engines.get(name);
      for (const id of await engine.list().catch(() => [] as string[])) {
        if (known.has(id)) continue;
        await engine.destroy(id, {}).catch((e: Error) => this.log(`sandbox ${id}: removing an orphan failed: ${e.message}`));
        this.log(`sandbox ${id}: removed (no record of it in state.db)`);
        orphans++;
      }
    }
    return { reattached, dead, orphans };
  }

  /** Destroys live sandboxes whose rows are gone (their user was deleted with --force while the daemon ran). */
  async reapOrphans(): Promise<void> {
    for (const [id, s] of this.live) {
      if (!this.row(id)) {
        this.live.delete(id);
        s.agent.close();
        await this.engines.get(s.engine).destroy(id, s.state).catch(() => {});
        this.log(`sandbox ${id}: destroyed (its owner was deleted)`);
      }
    }
  }

  /** Drops agent connections without touching the sandboxes (daemon shutdown: they keep running). */
  detachAll(): void {
    for (const s of this.live.values()) s.agent.close();
    this.live.clear();
  }

  private attach(s: RunningSandbox): void {
    this.live.set(s.id, s);
    s.agent.once("close", () => {
      if (this.live.get(s.id) === s) this.log(`sandbox ${s.id}: agent connection closed`);
    });
  }

  private async destroyRow(r: Row): Promise<void> {
    const s = this.live.get(r.id);
    this.live.delete(r.id);
    s?.agent.close();
    await this.engines.get(r.engine).destroy(r.id, s?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {}));
    this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(r.id);
  }

  private row(id: string): Row | undefined {
    return this.db.prepare("SELECT * FROM sandboxes WHERE id = ?").get(id) as Row | undefined;
  }

  private find(user: User, ref: string): Row {
    const r = this.byRef.get(user.id, ref, ref) as Row | undefined;
    if (!r) throw notFound(`sandbox ${JSON.stringify(ref)} not found`);
    return r;
  }
}

