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
import type { NetManager } from "../net/egress.js";
import { validateNetwork, type NetworkPolicy } from "../net/policy.js";
import { listeningPorts, type ListeningPort } from "../net/ports.js";
import { validateCpus, validateDisk, validateEnv, validateFiles, validateMemory, validateName, validateOptionalString, validateSecretNames } from "./validate.js";

/**
 * A sandbox's status:
 * - creating: being booted; a crash here is rolled back at the next start (row deleted).
 * - running: its agent answers.
 * - unreachable: its processes run but its agent does not answer (or a
 *   restarted daemon is still reconnecting); kept as is, retried every few seconds.
 * - dead: its processes are gone; its leftovers were removed. DELETE removes the row.
 * - deleting: a DELETE is under way; a crash here is finished at the next start.
 * - lost: the row came with a copy of state.db from another data dir; the sandbox
 *   belongs to that other daemon and this one touches nothing of it. DELETE removes the row only.
 */
export type SandboxStatus = "creating" | "running" | "unreachable" | "dead" | "deleting" | "lost";

/** How often live sandboxes are checked (their agent connection closing triggers a check at once), and unreachable ones retried. */
const CHECK_MS = 1000;
const RETRY_MS = 5000;

export interface RecoverySummary { reattached: number; unreachable: number; dead: number; rolledBack: number; deleted: number; orphans: number; lost: number }

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
  network: NetworkPolicy;
  created_at: string;
}

interface Row {
  id: string; user_id: number; name: string; engine: EngineName; image: string; cpus: number; memory_mb: number;
  env_keys: string; secret_names: string; template_id: string | null; status: string;
  token_encrypted: Buffer | null; engine_state: string | null; created_at: string; network: string | null;
}

const NO_NETWORK: NetworkPolicy = { egress: "none", allow_hosts: [], allow_cidrs: [] };
const policyOf = (r: Row): NetworkPolicy => (r.network ? JSON.parse(r.network) as NetworkPolicy : NO_NETWORK);

const view = (r: Row): SandboxView => ({
  id: r.id, name: r.name, engine: r.engine, image: r.image, cpus: r.cpus, memory_mb: r.memory_mb, status: r.status,
  env: JSON.parse(r.env_keys), secrets: JSON.parse(r.secret_names), template_id: r.template_id, network: policyOf(r), created_at: r.created_at,
});

export class SandboxService {
  private readonly live = new Map<string, RunningSandbox>();
  private readonly pending = new Set<string>(); // reattach in progress after a restart
  private readonly retrying = new Set<string>();
  private readonly lastRetry = new Map<string, number>();
  private readonly byRef; // every exec and file call looks a sandbox up
  private stopping = false;
  private timer?: NodeJS.Timeout;
  /** False when the runtime dir carries another daemon instance's mark: orphans found there are not provably ours. */
  ownRuntime = true;
  /** Sandbox networking (src/net); none: every sandbox has loopback only. */
  net?: NetManager;
  /** The policy of a sandbox whose create names none (serve --default-egress). */
  defaultNetwork: NetworkPolicy = { egress: "public", allow_hosts: [], allow_cidrs: [] };

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
    let templateNetwork: NetworkPolicy | null = null;

    if (body.template !== undefined && body.template !== null) {
      const t = this.templates.resolve(user, body.template);
      templateId = t.id;
      templateNetwork = t.network;
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
    // A template's policy is the base (the daemon's default if it names none); the request's fields go on top.
    const network = validateNetwork(body.network, templateNetwork ?? this.defaultNetwork);
    if (network.egress !== "none") {
      if (!this.net) throw new UserError(400, "networking is not available on this daemon (see the daemon log); create with network.egress none");
      if (engine.name !== "ns") throw new UserError(400, `network.egress ${network.egress} is not supported on engine ${engine.name} yet; use engine ns or network.egress none`);
    }

    // Resolving secrets also proves they exist: an unknown name (missing or another user's) is a 400 before anything starts.
    const t0 = performance.now();
    const plain = await this.secrets.resolveForSandbox(user, secretNames);
    const t1 = performance.now();

    const id = "sb" + randomBytes(8).toString("hex");
    const token = randomBytes(32).toString("hex");
    const now = new Date().toISOString();
    this.db.transaction(() => {
      const used = this.db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(cpus), 0) AS c, COALESCE(SUM(memory_mb), 0) AS m FROM sandboxes WHERE user_id = ? AND status NOT IN ('dead', 'lost')").get(user.id) as { n: number; c: number; m: number };
      if (used.n + 1 > user.max_sandboxes) throw new UserError(403, `quota exceeded: at most ${user.max_sandboxes} sandboxes (you have ${used.n})`);
      if (used.c + cpus > user.max_cpus) throw new UserError(403, `quota exceeded: at most ${user.max_cpus} cpus in total (${used.c} in use, ${cpus} requested)`);
      if (used.m + memory_mb > user.max_memory_mb) throw new UserError(403, `quota exceeded: at most ${user.max_memory_mb} MiB of memory in total (${used.m} in use, ${memory_mb} requested)`);
      if (this.db.prepare("SELECT 1 FROM sandboxes WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`sandbox ${JSON.stringify(name)} already exists`);
      this.admission?.check(this.db, cpus, memory_mb);
      this.db.prepare(`INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, env_keys, secret_names, template_id, status, created_at, network)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?)`)
        .run(id, user.id, name, engine.name, image, cpus, memory_mb, JSON.stringify(Object.keys(env).sort()), JSON.stringify(secretNames), templateId, now, JSON.stringify(network));
    }).immediate();

    // env for every command: secrets, then the sandbox env on top (defaults are applied by lohar underneath).
    const config: ConfigDrive = { sandbox_id: id, hostname: name, token, env: { ...Object.fromEntries(plain), ...env }, files, ...(init ? { init } : {}) };
    plain.clear();
    const tokenBlob = this.keyring.encrypt(token); // overlaps the boot
    let running: RunningSandbox;
    // Networking is set up while the engine prepares the rest (egress none: nothing to do, the fast path).
    const link = network.egress === "none" ? undefined : this.net!.prepare(id, user.name, name, network);
    link?.catch(() => {}); // awaited by the engine; a failure fails the create below
    try {
      running = await engine.create({ id, name, image, cpus, memoryMb: memory_mb, ...(diskMb ? { diskMb } : {}), config, ...(link ? { network: link } : {}) });
    } catch (e) {
      if (link) await link.then(() => {}, () => {}).then(() => this.net!.release(id)).catch((err: Error) => this.log(`sandbox ${id}: removing its network failed: ${err.message}`));
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
    if (this.pending.has(r.id)) throw reattaching(r.name);
    const s = this.live.get(r.id);
    if (!s || s.agent.closed) throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status === "running" ? "unreachable" : r.status})`);
    return s.agent;
  }

  async destroy(user: User, ref: string): Promise<void> {
    const r = this.find(user, ref);
    if (r.status === "lost") {
      // Another daemon's sandbox: forget the row, touch nothing on the host.
      this.db.prepare("DELETE FROM sandboxes WHERE id = ? AND status = 'lost'").run(r.id);
      recordEvent(this.db, "sandbox.destroyed", user.name, r.name, { id: r.id, lost: true });
      return;
    }
    if (this.pending.has(r.id)) throw reattaching(r.name);
    await this.destroyRow(r);
    recordEvent(this.db, "sandbox.destroyed", user.name, r.name, { id: r.id });
  }

  /**
   * After a daemon restart, in the background (the daemon already serves):
   * finishes or rolls back what a crash cut short, reattaches live sandboxes
   * in parallel, marks dead ones, and removes what no row accounts for.
   * A sandbox that runs but does not answer is kept, `unreachable`, and retried.
   */
  async recover(): Promise<RecoverySummary> {
    const sum: RecoverySummary = { reattached: 0, unreachable: 0, dead: 0, rolledBack: 0, deleted: 0, orphans: 0, lost: 0 };
    const rows = this.db.prepare("SELECT * FROM sandboxes").all() as Row[];
    sum.lost = rows.filter((r) => r.status === "lost").length;
    const toReattach = rows.filter((r) => r.status === "running" || r.status === "unreachable");
    for (const r of toReattach) this.pending.add(r.id);
    // Live sandboxes' network rules come back first (the nft table is recreated with this daemon's ports).
    if (this.net) {
      await Promise.all(toReattach.filter((r) => policyOf(r).egress !== "none").map((r) => this.net!.reattach(r.id, this.userName(r), r.name, policyOf(r))
        .catch((e: Error) => this.log(`sandbox ${r.id}: restoring its network failed: ${e.message}`))));
    }
    try {
      await Promise.all((["ns", "vm"] as const).map((n) => this.engines.get(n).sweep().catch((e: Error) => this.log(`${n}: sweeping trash failed: ${e.message}`))));
      await Promise.all([
        ...rows.filter((r) => r.status === "creating").map(async (r) => {
          // A create the client never saw succeed: undo it entirely.
          if (await this.engineDestroy(r, "rolling back an interrupted create")) {
            this.db.prepare("DELETE FROM sandboxes WHERE id = ? AND status = 'creating'").run(r.id);
            recordEvent(this.db, "sandbox.create_rolled_back", null, r.name, { id: r.id });
            this.log(`sandbox ${r.id} (${r.name}): an interrupted create was rolled back`);
            sum.rolledBack++;
          }
        }),
        ...rows.filter((r) => r.status === "deleting").map(async (r) => {
          if (await this.engineDestroy(r, "finishing an interrupted delete")) {
            this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(r.id);
            recordEvent(this.db, "sandbox.destroyed", null, r.name, { id: r.id, finished_after_restart: true });
            this.log(`sandbox ${r.id} (${r.name}): an interrupted delete was finished`);
            sum.deleted++;
          }
        }),
        ...toReattach.map(async (r) => {
          const outcome = await this.tryReattach(r);
          this.pending.delete(r.id);
          sum[outcome]++;
        }),
      ]);
    } finally {
      for (const r of toReattach) this.pending.delete(r.id);
    }
    if (this.stopping) return sum;
    if (this.net) {
      const keep = new Set((this.db.prepare("SELECT id FROM sandboxes WHERE status IN ('running', 'unreachable', 'creating', 'deleting')").all() as { id: string }[]).map((r) => r.id));
      await this.net.sweep(keep).then((n) => { if (n) this.log(`removed ${n} network leftover(s) of sandboxes that are gone`); }, (e: Error) => this.log(`sweeping network leftovers failed: ${e.message}`));
    }
    // Sandboxes on the host with no row: their owner was deleted while no daemon ran, or a crash hit between the engine and the database.
    if (!this.ownRuntime) {
      this.log("the runtime dir is marked by another daemon instance: sandboxes found there without a row are left alone");
      return sum;
    }
    const known = new Set((this.db.prepare("SELECT id FROM sandboxes").all() as { id: string }[]).map((r) => r.id));
    for (const name of ["ns", "vm"] as const) {
      const engine = this.engines.get(name);
      for (const id of await engine.list().catch(() => [] as string[])) {
        if (known.has(id) || this.stopping) continue;
        await engine.destroy(id, {}).catch((e: Error) => this.log(`sandbox ${id}: removing an orphan failed: ${e.message}`));
        this.log(`sandbox ${id}: removed (no record of it in state.db)`);
        sum.orphans++;
      }
    }
    return sum;
  }

  /**
   * Status reconciliation while the daemon runs: a sandbox whose agent
   * connection closes is checked at once; every second, live sandboxes are
   * checked against the engine (processes gone: dead) and unreachable ones
   * are retried every few seconds.
   */
  startReconciler(): void {
    this.timer = setInterval(() => { this.reconcile().catch((e: Error) => this.log(`status check failed: ${e.message}`)); }, CHECK_MS);
    this.timer.unref();
  }

  private async reconcile(): Promise<void> {
    if (this.stopping) return;
    await Promise.all([...this.live.values()].map((s) => this.check(s)));
    const now = Date.now();
    const stuck = this.db.prepare("SELECT * FROM sandboxes WHERE status = 'unreachable'").all() as Row[];
    await Promise.all(stuck.map(async (r) => {
      if (this.retrying.has(r.id) || this.pending.has(r.id) || now - (this.lastRetry.get(r.id) ?? 0) < RETRY_MS) return;
      this.retrying.add(r.id);
      this.lastRetry.set(r.id, now);
      try {
        const outcome = await this.tryReattach(r);
        if (outcome === "reattached") this.log(`sandbox ${r.id} (${r.name}): reachable again`);
      } finally {
        this.retrying.delete(r.id);
      }
    }));
  }

  /** One live sandbox: still alive? Its agent still connected? */
  private async check(s: RunningSandbox): Promise<void> {
    if (this.stopping || this.live.get(s.id) !== s) return;
    const alive = await this.engines.get(s.engine).alive(s.id, s.state).catch(() => true);
    if (this.stopping || this.live.get(s.id) !== s) return;
    const r = this.row(s.id);
    if (!r || r.status !== "running") return; // being deleted, or gone (reapOrphans)
    if (!alive) {
      this.live.delete(s.id);
      s.agent.close();
      await this.markDead(r, "its processes are gone");
    } else if (s.agent.closed) {
      this.live.delete(s.id);
      this.markUnreachable(r, "its processes run but the agent connection closed");
    }
  }

  /** Reattach one row (running or unreachable); records the outcome in its status. */
  private async tryReattach(r: Row): Promise<"reattached" | "unreachable" | "dead"> {
    let s: RunningSandbox | null = null;
    try {
      if (!r.token_encrypted || !r.engine_state) throw new Error("no token or engine state recorded");
      const token = await this.keyring.decrypt(r.token_encrypted);
      s = await this.engines.get(r.engine).reattach(r.id, JSON.parse(r.engine_state), token);
    } catch (e) {
      if (this.stopping) return "unreachable";
      if (r.status !== "unreachable") this.markUnreachable(r, (e as Error).message);
      return "unreachable";
    }
    if (this.stopping) {
      s?.agent.close();
      return s ? "reattached" : "dead";
    }
    if (!s) {
      // The engine found it dead and removed its leftovers.
      this.setStatus(r.id, r.status, "dead");
      recordEvent(this.db, "sandbox.dead", null, r.name, { id: r.id });
      this.log(`sandbox ${r.id} (${r.name}): dead (its processes are gone)`);
      return "dead";
    }
    if (!this.setStatus(r.id, r.status, "running", JSON.stringify(s.state))) {
      s.agent.close(); // deleted meanwhile
      return "dead";
    }
    this.attach(s);
    if (r.status === "unreachable") recordEvent(this.db, "sandbox.reattached", null, r.name, { id: r.id });
    return "reattached";
  }

  /** Kept, never destroyed for it, and retried by the reconciler until it answers. */
  private markUnreachable(r: Row, why: string): void {
    if (!this.setStatus(r.id, r.status, "unreachable")) return;
    recordEvent(this.db, "sandbox.unreachable", null, r.name, { id: r.id });
    this.log(`sandbox ${r.id} (${r.name}): unreachable, kept and retried: ${why}`);
  }

  private async markDead(r: Row, why: string): Promise<void> {
    if (!this.setStatus(r.id, "running", "dead")) return;
    recordEvent(this.db, "sandbox.dead", null, r.name, { id: r.id });
    this.log(`sandbox ${r.id} (${r.name}): dead (${why}); removing its leftovers`);
    await this.engineDestroy(r, "removing a dead sandbox's leftovers");
  }

  /** Compare-and-set of a row's status (a concurrent DELETE wins). */
  private setStatus(id: string, from: string, to: SandboxStatus, engineState?: string): boolean {
    if (this.stopping) return false;
    const res = engineState === undefined
      ? this.db.prepare("UPDATE sandboxes SET status = ? WHERE id = ? AND status = ?").run(to, id, from)
      : this.db.prepare("UPDATE sandboxes SET status = ?, engine_state = ? WHERE id = ? AND status = ?").run(to, engineState, id, from);
    return res.changes === 1;
  }

  /** engine.destroy for a row, logging a failure; true if it succeeded. */
  private async engineDestroy(r: Row, what: string): Promise<boolean> {
    try {
      await this.engines.get(r.engine).destroy(r.id, r.engine_state ? JSON.parse(r.engine_state) : {});
      await this.net?.release(r.id);
      return true;
    } catch (e) {
      this.log(`sandbox ${r.id}: ${what} failed (retried at the next start): ${(e as Error).message}`);
      return false;
    }
  }

  /** Destroys live sandboxes whose rows are gone (their user was deleted with --force while the daemon ran). */
  async reapOrphans(): Promise<void> {
    for (const [id, s] of this.live) {
      if (!this.row(id)) {
        this.live.delete(id);
        s.agent.close();
        await this.engines.get(s.engine).destroy(id, s.state).catch(() => {});
        await this.net?.release(id).catch(() => {});
        this.log(`sandbox ${id}: destroyed (its owner was deleted)`);
      }
    }
  }

  /** Drops agent connections without touching the sandboxes (daemon shutdown: they keep running). */
  detachAll(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.live.values()) s.agent.close();
    this.live.clear();
  }

  private attach(s: RunningSandbox): void {
    this.live.set(s.id, s);
    s.agent.once("close", () => {
      if (this.stopping || this.live.get(s.id) !== s) return;
      this.log(`sandbox ${s.id}: agent connection closed`);
      // lohar is gone or cut off: find out which at once (its init may take a moment to follow it).
      void (async () => {
        for (let i = 0; i < 5 && this.live.get(s.id) === s; i++) {
          if (!(await this.engines.get(s.engine).alive(s.id, s.state).catch(() => true))) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await this.check(s);
      })().catch((e: Error) => this.log(`sandbox ${s.id}: status check failed: ${e.message}`));
    });
  }

  private async destroyRow(r: Row): Promise<void> {
    // Written first: a crash from here on is finished at the next start, not brought back.
    this.db.prepare("UPDATE sandboxes SET status = 'deleting' WHERE id = ?").run(r.id);
    const s = this.live.get(r.id);
    this.live.delete(r.id);
    s?.agent.close();
    await this.engines.get(r.engine).destroy(r.id, s?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {}));
    await this.net?.release(r.id);
    this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(r.id);
  }

  /** PATCH /sandboxes/:id {network}: a running sandbox's new egress policy, applied to its new connections at once. */
  async setNetwork(user: User, ref: string, body: Record<string, unknown>): Promise<SandboxView> {
    const r = this.find(user, ref);
    for (const k of Object.keys(body)) if (k !== "network") throw new UserError(400, `unknown field ${JSON.stringify(k.slice(0, 40))}: only network can be changed`);
    const before = policyOf(r);
    const after = validateNetwork(body.network, before);
    if ((before.egress === "none") !== (after.egress === "none")) {
      throw new UserError(400, `network.egress cannot change between none and ${before.egress === "none" ? after.egress : before.egress} on a sandbox: it ${before.egress === "none" ? "has no network device" : "has its network device"} for life; create a new sandbox`);
    }
    if (r.status !== "running" && after.egress !== "none") throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status})`);
    if (after.egress !== "none") await this.net!.setPolicy(r.id, after);
    this.db.prepare("UPDATE sandboxes SET network = ? WHERE id = ?").run(JSON.stringify(after), r.id);
    recordEvent(this.db, "net.policy_changed", user.name, r.name, { id: r.id, egress: after.egress, allow_hosts: after.allow_hosts, allow_cidrs: after.allow_cidrs });
    return view(this.row(r.id)!);
  }

  /** Where the daemon reaches a running, networked sandbox's ports (its address on its veth). */
  peer(user: User, ref: string): { id: string; name: string; address: string } {
    const r = this.find(user, ref);
    if (r.status !== "running") throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status})`);
    const address = this.net?.addressOf(r.id);
    if (!address) throw new UserError(409, `sandbox ${JSON.stringify(r.name)} has no network (egress none): its ports cannot be reached; create it with egress public or deny`);
    return { id: r.id, name: r.name, address };
  }

  /** The TCP ports listening in a running sandbox (ns: read from its network namespace on the host). */
  ports(user: User, ref: string): ListeningPort[] {
    const r = this.find(user, ref);
    const s = this.live.get(r.id);
    if (!s || r.status !== "running") throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status})`);
    if (s.engine !== "ns" || typeof s.state.pid !== "number") throw new UserError(400, `listing ports is not supported on engine ${s.engine} yet`);
    return listeningPorts(s.state.pid);
  }

  private userName(r: Row): string {
    return (this.db.prepare("SELECT name FROM users WHERE id = ?").get(r.user_id) as { name: string } | undefined)?.name ?? "";
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

/** A sandbox whose reattach after a restart is still under way: a 503 the client may retry at once. */
function reattaching(name: string): UserError {
  return new UserError(503, `sandbox ${JSON.stringify(name)} is being reattached after a daemon restart; retry in a moment`, { "Retry-After": "1" });
}
