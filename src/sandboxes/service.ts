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
import type { EngineName, LifecycleOp, RunningSandbox } from "../engine/types.js";
import type { ConfigDrive } from "../protocol/agent.js";
import type { Engines } from "./engines.js";
import { DEFAULTS, type TemplateService } from "./templates.js";
import type { Admission } from "./admission.js";
import { requireImage } from "./images.js";
import { SandboxHandle } from "./operations.js";
import { ENGINE_NAMES } from "../engine/names.js";
import { defaultDiskMb } from "../image/names.js";
import { validateCpus, validateDisk, validateEnv, validateFiles, validateMemory, validateName, validateOptionalString } from "./validate.js";
import { takePhases } from "../util/phases.js";
import { validateSecretRefs, type SecretFileRef } from "./secret-files.js";
import { secretInjection } from "./secret-events.js";
import { SandboxRedactors } from "./redactors.js";
import { Redactor } from "../secrets/redact.js";
import { type BootConfig, type IdlePolicy, NO_IDLE, cannotNow, idleStep, parseBoot } from "./lifecycle.js";
import type { AttachedVolume, VolumeService } from "../volumes/service.js";
import { validateVolumeMounts } from "../volumes/validate.js";
import type { SnapshotService, SnapshotView } from "../snapshots/service.js";
import type { NetManager } from "../net/egress.js";
import { validateNetwork, type NetworkPolicy } from "../net/policy.js";
import { lowerToCap, requireWithinCap } from "../net/cap.js";
import { listeningPorts, type ListeningPort } from "../net/ports.js";
import type { BrokerStore } from "../broker/store.js";
import { bootBrokering, brokeredEnv } from "../broker/boot.js";
import { guestListeningPorts } from "../net/guest-ports.js";
import { keepsNetwork } from "./net-keep.js";

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
 * - paused: its processes are frozen in memory (warm); a daemon restart keeps it paused.
 * - stopping / starting: a stop or start is under way; a crash here is finished
 *   (stopping) or undone (starting) at the next start: both end `stopped`.
 * - stopped: no process runs; its writable layer is kept; start boots it again.
 */
export type SandboxStatus = "creating" | "running" | "unreachable" | "dead" | "deleting" | "lost" | "paused" | "stopping" | "starting" | "stopped";

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
  disk_mb: number | null; // writable-layer limit, MiB (null: made before limits existed)
  status: string;
  env: string[]; // names only
  secrets: string[]; // names only (env)
  brokered: string[]; // of its secrets, those it holds only as placeholders (brokered: bound to hosts)
  secret_files: SecretFileRef[]; // names, paths and modes only
  secret_versions: Record<string, number>; // the version of each secret this sandbox received
  redact: boolean; // exec output has this sandbox's secret values redacted
  template_id: string | null;
  network: NetworkPolicy;
  created_at: string;
  keep_hot: boolean;
  idle: string | null; // "warm" / "cold" when the idle policy paused or stopped it
  volumes: { name: string; path: string; ro: boolean }[];
}

interface Row {
  id: string; user_id: number; name: string; engine: EngineName; image: string; cpus: number; memory_mb: number; disk_mb: number | null;
  env_keys: string; secret_names: string; template_id: string | null; status: string;
  token_encrypted: Buffer | null; engine_state: string | null; created_at: string; network: string | null;
  secret_files: string; secret_versions: string; redact: number; redact_encrypted: Buffer | null;
  boot_encrypted: Buffer | null; keep_hot: number; idle: string | null; volumes: string | null;
}

const NO_NETWORK: NetworkPolicy = { egress: "none", allow_hosts: [], allow_cidrs: [] };
const policyOf = (r: Row): NetworkPolicy => (r.network ? JSON.parse(r.network) as NetworkPolicy : NO_NETWORK);

const view = (r: Row, brokered: string[] = []): SandboxView => ({
  id: r.id, name: r.name, engine: r.engine, image: r.image, cpus: r.cpus, memory_mb: r.memory_mb, disk_mb: r.disk_mb, status: r.status,
  env: JSON.parse(r.env_keys), secrets: JSON.parse(r.secret_names), brokered, secret_files: JSON.parse(r.secret_files),
  secret_versions: JSON.parse(r.secret_versions), redact: r.redact === 1, template_id: r.template_id, network: policyOf(r), created_at: r.created_at,
  keep_hot: r.keep_hot === 1, idle: r.idle,
  volumes: (r.volumes ? (JSON.parse(r.volumes) as AttachedVolume[]) : []).map((v) => ({ name: v.name, path: v.path, ro: v.ro })),
});

export class SandboxService {
  /** The API's view of a row, with the names of the secrets it holds only as placeholders (a name only: never a placeholder). */
  private view(r: Row): SandboxView {
    const b = this.db.prepare("SELECT placeholders FROM sandbox_brokers WHERE sandbox_id = ?").get(r.id) as { placeholders: string } | undefined;
    return view(r, b ? Object.keys(JSON.parse(b.placeholders) as Record<string, string>).sort() : []);
  }

  private readonly live = new Map<string, RunningSandbox>();
  private readonly pending = new Set<string>(); // reattach in progress after a restart
  private readonly retrying = new Set<string>();
  private readonly lastRetry = new Map<string, number>();
  private readonly byRef; // every exec and file call looks a sandbox up
  private readonly redactors = new SandboxRedactors();
  private stopping = false;
  private timer?: NodeJS.Timeout;
  /** False when the runtime dir carries another daemon instance's mark: orphans found there are not provably ours. */
  ownRuntime = true;
  /** Sandbox networking (src/net); none: every sandbox has loopback only. */
  net?: NetManager;
  /** Brokered secrets (issue 11): placeholders and per-sandbox CAs; unset: a create naming a bound secret is refused. */
  broker?: BrokerStore;
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
    if (body.from !== undefined && body.from !== null) return this.fork(user, body);
    const warnings: string[] = [];
    const name = validateName(body.name);
    const engine = this.engines.pick(body.engine);
    let image = this.templates.defaultImage;
    let cpus = DEFAULTS.cpus;
    let memory_mb = DEFAULTS.memory_mb;
    let env: Record<string, string> = {};
    let { env: secretNames, files: secretFiles } = validateSecretRefs(body.secrets);
    const redact = validateRedact(body.redact);
    let files = validateFiles(body.files);
    const requestEnv = validateEnv(body.env);
    const init = validateOptionalString(body.init, "init");
    if (body.keep_hot !== undefined && typeof body.keep_hot !== "boolean") throw new UserError(400, "keep_hot must be a boolean");
    const keepHot = body.keep_hot === true;
    const volumeMounts = validateVolumeMounts(body.volumes);
    if (volumeMounts.length && !this.volumes) throw new UserError(400, "volumes are not available on this daemon");
    let attached: AttachedVolume[] = [];
    let templateId: string | null = null;
    let templateName = "";
    let templateNetwork: NetworkPolicy | null = null;

    if (body.template !== undefined && body.template !== null) {
      const t = this.templates.resolve(user, body.template);
      templateId = t.id;
      templateName = t.name;
      templateNetwork = t.network;
      ({ image, cpus, memory_mb } = t);
      // Like its secrets, a template's image wins over the request's.
      if (body.image !== undefined && body.image !== null && body.image !== t.image) warnings.push(`template ${t.name}: the request's image was dropped; the template's image ${t.image} is used`);
      env = { ...t.env };
      // Creating from a template honours only the template's secrets, and no request files.
      const dropped = [...secretNames, ...secretFiles.map((f) => `${f.name}:${f.path}`)];
      if (dropped.length) warnings.push(`template ${t.name}: the request's secrets were dropped (${dropped.join(", ")}); only the template's secrets are used`);
      if (files.length) warnings.push(`template ${t.name}: the request's files were dropped (${files.length} file${files.length === 1 ? "" : "s"}); create without a template to pass files`);
      secretNames = t.secrets;
      secretFiles = t.secret_files;
      files = [];
    } else if (body.image !== undefined && body.image !== null) image = body.image as string; // checked just below
    image = requireImage(this.engines.env.imagesDir, image);
    if (body.cpus !== undefined) cpus = validateCpus(body.cpus);
    if (body.memory_mb !== undefined) memory_mb = validateMemory(body.memory_mb);
    const diskMb = body.disk_mb === undefined || body.disk_mb === null ? defaultDiskMb(image) : validateDisk(body.disk_mb);
    env = { ...env, ...requestEnv };
    // A template's policy is the base (the daemon's default lowered to the user's egress cap if it names none); the request's fields go on top.
    if (templateNetwork) requireWithinCap(templateNetwork, user.max_egress, `template ${JSON.stringify(templateName)}`);
    const network = validateNetwork(body.network, templateNetwork ?? lowerToCap(this.defaultNetwork, user.max_egress));
    requireWithinCap(network, user.max_egress);
    if (network.egress !== "none") {
      if (!this.net) throw new UserError(400, "networking is not available on this daemon (see the daemon log); create with network.egress none");
    }

    // Resolving secrets also proves they exist: an unknown name (missing or another user's) is a 400 before anything starts.
    const t0 = performance.now();
    const resolved = await this.secrets.resolve(user, [...new Set([...secretNames, ...secretFiles.map((f) => f.name)])]);
    // Bound secrets (issue 11) were not decrypted: the sandbox gets placeholders for them, wherever a value would go.
    const brokering = await bootBrokering(this.broker, user.id, resolved);
    const plain = resolved.values;
    const t1 = performance.now();

    const id = "sb" + randomBytes(8).toString("hex");
    const token = randomBytes(32).toString("hex");
    const now = new Date().toISOString();
    this.db.transaction(() => {
      const used = this.db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(cpus), 0) AS c, COALESCE(SUM(memory_mb), 0) AS m, COALESCE(SUM(disk_mb), 0) AS d FROM sandboxes WHERE user_id = ? AND status NOT IN ('dead', 'lost')").get(user.id) as { n: number; c: number; m: number; d: number };
      if (used.n + 1 > user.max_sandboxes) throw new UserError(403, `quota exceeded: at most ${user.max_sandboxes} sandboxes (you have ${used.n})`, {}, "quota_exceeded");
      if (used.c + cpus > user.max_cpus) throw new UserError(403, `quota exceeded: at most ${user.max_cpus} cpus in total (${used.c} in use, ${cpus} requested)`, {}, "quota_exceeded");
      if (used.m + memory_mb > user.max_memory_mb) throw new UserError(403, `quota exceeded: at most ${user.max_memory_mb} MiB of memory in total (${used.m} in use, ${memory_mb} requested)`, {}, "quota_exceeded");
      if (used.d + diskMb > user.max_disk_mb) throw new UserError(403, `quota exceeded: at most ${user.max_disk_mb} MiB of disk in total (${used.d} in use, ${diskMb} requested)`, {}, "quota_exceeded");
      if (this.db.prepare("SELECT 1 FROM sandboxes WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`sandbox ${JSON.stringify(name)} already exists`, "name_taken");
      this.admission?.check(this.db, cpus, memory_mb);
      this.db.prepare(`INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, disk_mb, env_keys, secret_names, template_id, status, created_at, secret_files, secret_versions, redact, network)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?, ?, ?, ?)`)
        .run(id, user.id, name, engine.name, image, cpus, memory_mb, diskMb, JSON.stringify(Object.keys(env).sort()), JSON.stringify(secretNames), templateId, now,
          JSON.stringify(secretFiles), JSON.stringify(resolved.versions), redact ? 1 : 0, JSON.stringify(network));
      brokering?.save(id); // deleted with the row (ON DELETE CASCADE), however the sandbox goes
      if (volumeMounts.length) {
        attached = this.volumes!.claim(user, volumeMounts, id, engine.name);
        this.db.prepare("UPDATE sandboxes SET volumes = ? WHERE id = ?").run(JSON.stringify(attached), id);
      }
    }).immediate();

    // env for every command: secrets, then the sandbox env on top (defaults are applied by lohar underneath).
    const secretEnv = Object.fromEntries(secretNames.map((n) => [n, plain.get(n)!]));
    const config: ConfigDrive = {
      sandbox_id: id, hostname: name, token, env: brokeredEnv(brokering, { ...secretEnv, ...env }), files, ...(init ? { init } : {}),
      ...(brokering ? { ca_cert: brokering.caCert } : {}),
      ...(secretFiles.length ? { secret_files: secretFiles.map((f) => ({ path: f.path, mode: f.mode, value: plain.get(f.name)! })) } : {}),
    };
    // A redact sandbox keeps what it received: in memory (its redactor) and, encrypted like its token, in its row for after a restart.
    let redactBlob: Promise<Buffer> | null = null;
    if (redact) {
      this.redactors.remember(id, plain);
      redactBlob = this.keyring.encrypt(JSON.stringify(Object.fromEntries(plain)));
    }
    plain.clear();
    const tokenBlob = this.keyring.encrypt(token); // overlaps the boot
    const boot: BootConfig = { env, ...(init ? { init } : {}) };
    const bootBlob = this.keyring.encrypt(JSON.stringify(boot));
    let running: RunningSandbox;
    // Networking is set up while the engine prepares the rest (egress none: nothing to do, the fast path).
    const link = network.egress === "none" ? undefined : this.net!.prepare(id, user.name, name, network, engine.name === "vm" ? "tap" : "veth");
    link?.catch(() => {}); // awaited by the engine; a failure fails the create below
    try {
      running = await engine.create({ id, name, image, cpus, memoryMb: memory_mb, diskMb, ...(attached.length ? { volumes: attached } : {}), config, ...(link ? { network: link } : {}) });
    } catch (e) {
      this.redactors.forget(id);
      if (link) await link.then(() => {}, () => {}).then(() => this.net!.release(id)).catch((err: Error) => this.log(`sandbox ${id}: removing its network failed: ${err.message}`));
      this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(id);
      // The attempt is audited too: the secrets went onto a config drive for a sandbox that never ran.
      this.db.transaction(() => {
        recordEvent(this.db, "sandbox.created", user.name, name, { id, engine: engine.name, secrets: secretNames }, { result: "error" });
        const injected = secretInjection(id, secretNames, secretFiles, resolved.versions, resolved.bound);
        if (injected) recordEvent(this.db, "secret.injected", user.name, name, injected, { result: "error" });
      })();
      this.volumes?.release(id);
      takePhases(id);
      this.log(`sandbox ${id} failed to start on ${engine.name}: ${(e as Error).message}`);
      throw new UserError(500, `sandbox failed to start on engine ${engine.name} (the daemon log has details)`, {}, "sandbox_failed");
    } finally {
      config.env = {};
      config.files = [];
      config.secret_files = [];
    }
    const t2 = performance.now();
    const [tokenEnc, redactEnc, bootEnc] = await Promise.all([tokenBlob, redactBlob, bootBlob]);
    // The row and its events in one transaction: one durable commit (fsync) instead of two.
    this.db.transaction(() => {
      this.db.prepare("UPDATE sandboxes SET status = 'running', engine_state = ?, token_encrypted = ?, redact_encrypted = ?, boot_encrypted = ?, keep_hot = ? WHERE id = ?")
        .run(JSON.stringify(running.state), tokenEnc, redactEnc, bootEnc, keepHot ? 1 : 0, id);
      recordEvent(this.db, "sandbox.created", user.name, name, { id, engine: engine.name, secrets: secretNames, redact });
      if (templateId) recordEvent(this.db, "template.used", user.name, templateName, { template_id: templateId, sandbox: name, sandbox_id: id });
      const injected = secretInjection(id, secretNames, secretFiles, resolved.versions, resolved.bound);
      if (injected) recordEvent(this.db, "secret.injected", user.name, name, injected);
    })();
    this.touch(id);
    this.attach(running);
    const t3 = performance.now();
    const phases = takePhases(id); // BHATTI_TRACE_CREATE=1: each step's ms (util/phases.ts)
    this.log(`sandbox ${id} (${name}) created on ${engine.name} in ${(t3 - t0).toFixed(0)} ms: secrets ${(t1 - t0).toFixed(1)}, engine ${(t2 - t1).toFixed(1)}, persist ${(t3 - t2).toFixed(1)}${phases ? ` [${phases}]` : ""}`);
    return { sandbox: this.view(this.row(id)!), warnings };
  }

  list(user: User): SandboxView[] {
    return (this.db.prepare("SELECT * FROM sandboxes WHERE user_id = ? ORDER BY name").all(user.id) as Row[]).map((r) => this.view(r));
  }

  /** By id or name; another user's sandbox is simply not found. */
  get(user: User, ref: string): SandboxView {
    return this.view(this.find(user, ref));
  }

  /** The live agent connection of a running sandbox. */
  agent(user: User, ref: string): AgentClient {
    const r = this.find(user, ref);
    if (this.pending.has(r.id)) throw reattaching(r.name);
    const s = this.live.get(r.id);
    if (!s || s.agent.closed) throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status === "running" ? "unreachable" : r.status})`, {}, "not_running");
    return s.agent;
  }

  /**
   * The redactor for an exec's output: the sandbox's own (created with
   * `redact`), or, when the exec asks for it, one built from the store's
   * current values of the secrets the sandbox received. null: no redaction.
   */
  async redactor(user: User, ref: string, requested: boolean): Promise<Redactor | null> {
    const r = this.find(user, ref);
    if (!r.redact && !requested) return null;
    const kept = this.redactors.get(r.id);
    if (kept) return kept;
    if (r.redact && r.redact_encrypted) {
      // After a daemon restart: the values this sandbox received (not the store's current ones), rebuilt once.
      const red = new Redactor(Object.entries(JSON.parse(await this.keyring.decrypt(r.redact_encrypted)) as Record<string, string>));
      this.redactors.set(r.id, red);
      return red;
    }
    const names = [...new Set([...JSON.parse(r.secret_names) as string[], ...(JSON.parse(r.secret_files) as SecretFileRef[]).map((f) => f.name)])];
    const { values } = await this.secrets.resolve(user, names, { skipMissing: true });
    // Brokered secrets: the sandbox only ever saw their placeholders.
    for (const [n, p] of this.broker?.placeholdersOf(r.id) ?? []) if (names.includes(n)) values.set(n, p);
    const red = new Redactor(values);
    values.clear();
    if (r.redact) this.redactors.set(r.id, red); // after a daemon restart: rebuilt once, then kept like at create
    return red;
  }

  /** Like open(), after waking a paused (warm) or idle-stopped sandbox (ready()). */
  async openReady(user: User, ref: string): Promise<SandboxHandle> {
    return new SandboxHandle(await this.ready(user, ref));
  }

  /** Exec and file operations in a running sandbox (404/409/503 as agent() when it is not reachable). */
  open(user: User, ref: string): SandboxHandle {
    return new SandboxHandle(this.agent(user, ref));
  }

  async destroy(user: User, ref: string): Promise<void> {
    const r = this.find(user, ref);
    if (r.status === "lost") {
      // Another daemon's sandbox: forget the row, touch nothing on the host.
      this.db.prepare("DELETE FROM sandboxes WHERE id = ? AND status = 'lost'").run(r.id);
      this.volumes?.release(r.id);
      recordEvent(this.db, "sandbox.destroyed", user.name, r.name, { id: r.id, lost: true });
      return;
    }
    if (this.pending.has(r.id)) throw reattaching(r.name);
    await this.destroyRow(r);
    recordEvent(this.db, "sandbox.destroyed", user.name, r.name, { id: r.id });
  }

  // ---- lifecycle (issue 14): stop/start, pause/resume, idle policy ----

  /** Idle policy (serve --idle-warm-seconds / --idle-cold-minutes); off by default. */
  idlePolicy: IdlePolicy = NO_IDLE;
  /** Volumes (issue 14); unset: creates with volumes are refused. */
  volumes?: VolumeService;
  private readonly lastActive = new Map<string, number>();
  private readonly transitions = new Map<string, Promise<unknown>>(); // one lifecycle step per sandbox at a time

  /** Records API activity on a sandbox (the idle policy counts from the last one). */
  private touch(id: string): void {
    this.lastActive.set(id, Date.now());
  }

  /**
   * Hook for traffic that does not go through ready() (port proxy, attached
   * sessions): counts as activity, so the idle policy leaves the sandbox hot.
   */
  markActive(sandboxId: string): void {
    this.touch(sandboxId);
  }

  /** Runs f after any lifecycle step already under way for this sandbox. */
  private serial<T>(id: string, f: () => Promise<T>): Promise<T> {
    const prev = this.transitions.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(f);
    const tail = next.catch(() => {});
    this.transitions.set(id, tail);
    void tail.then(() => { if (this.transitions.get(id) === tail) this.transitions.delete(id); });
    return next;
  }

  /** 400 naming the reason when the engine cannot do op for this sandbox on this host. */
  private requireEngine(r: Row, op: LifecycleOp): void {
    const why = this.engines.get(r.engine).cannot(op, r.id, r.engine_state ? JSON.parse(r.engine_state) : {});
    if (why) throw new UserError(400, `cannot ${op} sandbox ${JSON.stringify(r.name)}: ${why}`);
  }

  /**
   * The agent of a sandbox, woken first if the idle policy (or a pause) put it
   * to sleep: any request wakes a warm sandbox, and a cold one the idle policy
   * stopped. A sandbox a user stopped stays stopped (409).
   */
  async ready(user: User, ref: string): Promise<AgentClient> {
    const r = this.find(user, ref);
    this.touch(r.id);
    if (r.status === "paused" || r.status === "stopping" || r.status === "starting" || (r.status === "stopped" && r.idle === "cold")) {
      await this.serial(r.id, () => this.wake(r.id));
    }
    return this.agent(user, ref);
  }

  /** Back to running from paused or idle-stopped (whatever it is once earlier steps are done). */
  private async wake(id: string): Promise<void> {
    const r = this.row(id);
    if (!r) return;
    if (r.status === "paused") await this.doResume(r);
    else if (r.status === "stopped" && r.idle === "cold") await this.doStart(r);
  }

  async stop(user: User, ref: string): Promise<SandboxView> {
    const r0 = this.find(user, ref);
    if (this.pending.has(r0.id)) throw reattaching(r0.name);
    if (r0.status === "lost" || r0.status === "dead" || r0.status === "deleting" || r0.status === "creating") throw cannotNow(r0.name, "stop", r0.status);
    this.requireEngine(r0, "stop");
    await this.serial(r0.id, async () => {
      const r = this.row(r0.id);
      if (!r || r.status === "stopped") {
        if (r) this.db.prepare("UPDATE sandboxes SET idle = NULL WHERE id = ?").run(r.id); // a user's stop: no request wakes it
        return;
      }
      await this.doStop(r, null);
    });
    recordEvent(this.db, "sandbox.stopped", user.name, r0.name, { id: r0.id });
    return this.view(this.find(user, ref));
  }

  private async doStop(r: Row, idle: "cold" | null): Promise<void> {
    if (r.status !== "running" && r.status !== "paused" && r.status !== "unreachable") throw cannotNow(r.name, "stop", r.status);
    await this.flushVolumes(r); // vm: the guest's dirty pages reach its volumes before its memory is put away
    if (!this.setStatus(r.id, r.status, "stopping")) throw cannotNow(r.name, "stop", this.row(r.id)?.status ?? "gone");
    const s = this.live.get(r.id);
    this.live.delete(r.id);
    s?.agent.close();
    const state = s?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {});
    let kept;
    try {
      kept = await this.engines.get(r.engine).stop(r.id, state);
    } catch (e) {
      // Left `stopping`: the next daemon start finishes it.
      this.log(`sandbox ${r.id} (${r.name}): stop failed: ${(e as Error).message}`);
      throw new UserError(500, `stopping sandbox ${JSON.stringify(r.name)} failed (the daemon log has details)`);
    }
    // A stopped sandbox holds no lease, veth, DNS listener or nft elements: start sets them up again.
    // Except on vm: its memory snapshot has eth0 configured with this address, and the restore needs the same tap.
    if (!keepsNetwork({ status: "stopped", engine: r.engine })) await this.net?.release(r.id).catch((e: Error) => this.log(`sandbox ${r.id}: releasing its network failed (retried at the next start of the daemon): ${e.message}`));
    this.db.prepare("UPDATE sandboxes SET status = 'stopped', engine_state = ?, idle = ? WHERE id = ? AND status = 'stopping'").run(JSON.stringify(kept), idle, r.id);
    this.log(`sandbox ${r.id} (${r.name}): stopped${idle ? " (idle)" : ""}`);
  }

  async start(user: User, ref: string): Promise<SandboxView> {
    const r0 = this.find(user, ref);
    if (r0.status === "running") return this.view(r0);
    this.requireEngine(r0, "start");
    await this.serial(r0.id, async () => {
      const r = this.row(r0.id);
      if (!r) throw notFound(`sandbox ${JSON.stringify(ref)} not found`);
      if (r.status === "running") return;
      if (r.status === "paused") return this.doResume(r);
      await this.doStart(r);
    });
    recordEvent(this.db, "sandbox.started", user.name, r0.name, { id: r0.id });
    return this.view(this.find(user, ref));
  }

  /**
   * Boots a stopped sandbox: a new token, and a config drive built from the
   * current values of its secrets (a rotated secret takes effect here) plus
   * its recorded plain env.
   */
  private async doStart(r: Row): Promise<void> {
    if (r.status !== "stopped") throw cannotNow(r.name, "start", r.status);
    const owner = this.db.prepare("SELECT id, name FROM users WHERE id = ?").get(r.user_id) as { id: number; name: string } | undefined;
    if (!owner) throw notFound(`sandbox ${JSON.stringify(r.name)} not found`);
    const boot: BootConfig = r.boot_encrypted ? parseBoot(await this.keyring.decrypt(r.boot_encrypted)) : { env: {} };
    const secretNames = JSON.parse(r.secret_names) as string[];
    this.requireNetworking(r.name, policyOf(r));
    const resolved = await this.secrets.resolve(owner as User, secretNames);
    // Its own placeholders again (its disk may hold them), new ones for secrets bound since.
    const brokering = await bootBrokering(this.broker, owner.id, resolved, { sandbox: r.id });
    const plain = resolved.values;
    this.db.transaction(() => {
      this.admission?.check(this.db, r.cpus, r.memory_mb);
      if (!this.setStatus(r.id, "stopped", "starting")) throw cannotNow(r.name, "start", this.row(r.id)?.status ?? "gone");
      brokering?.save(r.id);
    }).immediate();
    const engine = this.engines.get(r.engine);
    // An engine that restores memory (vm) brings back the guest's env and agent token as they were.
    const token = engine.restoresMemory && r.token_encrypted ? await this.keyring.decrypt(r.token_encrypted) : randomBytes(32).toString("hex");
    const config: ConfigDrive = {
      sandbox_id: r.id, hostname: r.name, token, env: engine.restoresMemory ? {} : brokeredEnv(brokering, { ...Object.fromEntries(plain), ...boot.env }), files: [], ...(boot.init ? { init: boot.init } : {}),
      ...(brokering ? { ca_cert: brokering.caCert } : {}),
    };
    plain.clear();
    const tokenBlob = this.keyring.encrypt(token);
    const state = r.engine_state ? JSON.parse(r.engine_state) : {};
    let running: RunningSandbox;
    // Its network comes back under its stored policy (a new lease: possibly a new address); a vm kept its own.
    const link = keepsNetwork({ status: "stopped", engine: r.engine }) ? undefined : this.prepareNetwork(r.id, owner.name, r.name, policyOf(r), r.engine);
    try {
      const volumes = r.volumes ? (JSON.parse(r.volumes) as AttachedVolume[]) : [];
      running = await engine.start({ id: r.id, name: r.name, image: r.image, cpus: r.cpus, memoryMb: r.memory_mb, ...(volumes.length ? { volumes } : {}), config, ...(link ? { network: link } : {}) }, state);
    } catch (e) {
      await this.unprepareNetwork(r.id, link);
      this.setStatus(r.id, "starting", "stopped");
      this.log(`sandbox ${r.id} (${r.name}) failed to start on ${r.engine}: ${(e as Error).message}`);
      throw new UserError(500, `sandbox ${JSON.stringify(r.name)} failed to start on engine ${r.engine} (the daemon log has details)`);
    } finally {
      config.env = {};
    }
    if (!this.setStatus(r.id, "starting", "running", JSON.stringify(running.state))) {
      running.agent.close();
      return;
    }
    this.db.prepare("UPDATE sandboxes SET token_encrypted = ?, idle = NULL WHERE id = ?").run(await tokenBlob, r.id);
    this.attach(running);
    this.touch(r.id);
  }

  /** 400 when a sandbox with this policy cannot get a network here (no networking on this daemon). */
  private requireNetworking(name: string, policy: NetworkPolicy): void {
    if (policy.egress !== "none" && !this.net) throw new UserError(400, `sandbox ${JSON.stringify(name)} has network.egress ${policy.egress}, but networking is not available on this daemon (see the daemon log)`);
  }

  /** Sets up a sandbox's network under its policy, alongside the engine's boot (start, fork); none: nothing to do. */
  private prepareNetwork(id: string, user: string, name: string, policy: NetworkPolicy, engine: string) {
    if (policy.egress === "none" || !this.net) return undefined;
    const link = this.net.prepare(id, user, name, policy, engine === "vm" ? "tap" : "veth");
    link.catch(() => {}); // awaited by the engine; a failure fails the boot
    return link;
  }

  /** Undoes prepareNetwork after a failed boot. */
  private async unprepareNetwork(id: string, link: Promise<unknown> | undefined): Promise<void> {
    if (!link) return;
    await link.then(() => {}, () => {}).then(() => this.net!.release(id)).catch((err: Error) => this.log(`sandbox ${id}: removing its network failed: ${err.message}`));
  }

  async pause(user: User, ref: string): Promise<SandboxView> {
    const r0 = this.find(user, ref);
    if (this.pending.has(r0.id)) throw reattaching(r0.name);
    if (r0.status !== "running" && r0.status !== "paused") throw cannotNow(r0.name, "pause", r0.status);
    this.requireEngine(r0, "pause");
    await this.serial(r0.id, async () => {
      const r = this.row(r0.id);
      if (!r || r.status === "paused") return;
      await this.doPause(r, null);
    });
    recordEvent(this.db, "sandbox.paused", user.name, r0.name, { id: r0.id });
    return this.view(this.find(user, ref));
  }

  private async doPause(r: Row, idle: "warm" | null): Promise<void> {
    if (r.status !== "running") throw cannotNow(r.name, "pause", r.status);
    const s = this.live.get(r.id);
    const state = s?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {});
    await this.engines.get(r.engine).pause(r.id, state);
    if (!this.setStatus(r.id, "running", "paused")) {
      await this.engines.get(r.engine).resume(r.id, state).catch(() => {});
      throw cannotNow(r.name, "pause", this.row(r.id)?.status ?? "gone");
    }
    this.db.prepare("UPDATE sandboxes SET idle = ? WHERE id = ?").run(idle, r.id);
  }

  async resume(user: User, ref: string): Promise<SandboxView> {
    const r0 = this.find(user, ref);
    if (r0.status !== "running" && r0.status !== "paused") throw cannotNow(r0.name, "resume", r0.status);
    this.touch(r0.id);
    await this.serial(r0.id, async () => {
      const r = this.row(r0.id);
      if (!r || r.status === "running") return;
      await this.doResume(r);
    });
    recordEvent(this.db, "sandbox.resumed", user.name, r0.name, { id: r0.id });
    return this.view(this.find(user, ref));
  }

  private async doResume(r: Row): Promise<void> {
    if (r.status !== "paused") throw cannotNow(r.name, "resume", r.status);
    const s = this.live.get(r.id);
    const state = s?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {});
    await this.engines.get(r.engine).resume(r.id, state);
    this.touch(r.id);
    if (s && !s.agent.closed) {
      if (this.setStatus(r.id, "paused", "running")) this.db.prepare("UPDATE sandboxes SET idle = NULL WHERE id = ?").run(r.id);
      return;
    }
    // Paused across a daemon restart: no agent connection yet. Reattach it as a running sandbox.
    this.live.delete(r.id);
    if (!this.setStatus(r.id, "paused", "running")) return;
    this.db.prepare("UPDATE sandboxes SET idle = NULL WHERE id = ?").run(r.id);
    const outcome = await this.tryReattach({ ...r, status: "running", idle: null });
    if (outcome !== "reattached") throw new UserError(503, `sandbox ${JSON.stringify(r.name)} was resumed but its agent does not answer yet (status ${outcome}); retry in a moment`, { "Retry-After": "1" });
  }

  /** One pass of the idle policy: idle running sandboxes go warm, idle warm ones go cold (where the engine can stop). */
  private async idleTick(): Promise<void> {
    const { warmMs, coldMs } = this.idlePolicy;
    if (!warmMs && !coldMs) return;
    const now = Date.now();
    const rows = this.db.prepare("SELECT * FROM sandboxes WHERE status IN ('running', 'paused') AND keep_hot = 0").all() as Row[];
    for (const r of rows) {
      if (this.stopping || this.transitions.has(r.id) || this.pending.has(r.id)) continue;
      const s = this.live.get(r.id);
      if (s && s.agent.activeStreams > 0) this.touch(r.id); // an exec, file transfer or session is open: in use
      if (!this.lastActive.has(r.id)) this.touch(r.id); // first seen (e.g. after a restart): counts from now
      const step = idleStep(r.status, now - this.lastActive.get(r.id)!, this.idlePolicy, false);
      if (!step) continue;
      if (step === "warm") {
        if (r.status === "running" && (!s || s.agent.closed)) continue; // unreachable-ish: leave to the reconciler
        if (this.engines.get(r.engine).cannot("pause", r.id, r.engine_state ? JSON.parse(r.engine_state) : {})) continue;
        void this.serial(r.id, async () => {
          const cur = this.row(r.id);
          if (cur?.status !== "running" || Date.now() - (this.lastActive.get(r.id) ?? 0) < warmMs) return;
          await this.doPause(cur, "warm");
          this.log(`sandbox ${r.id} (${r.name}): warm (paused after ${Math.round(warmMs / 1000)} s idle)`);
        }).catch((e: Error) => this.log(`sandbox ${r.id}: idle pause failed: ${e.message}`));
      } else {
        if (r.idle !== "warm") continue; // a user's pause stays a pause
        if (this.engines.get(r.engine).cannot("stop", r.id, r.engine_state ? JSON.parse(r.engine_state) : {})) continue;
        void this.serial(r.id, async () => {
          const cur = this.row(r.id);
          if (cur?.status !== "paused" || cur.idle !== "warm" || Date.now() - (this.lastActive.get(r.id) ?? 0) < coldMs) return;
          await this.doStop(cur, "cold");
        }).catch((e: Error) => this.log(`sandbox ${r.id}: idle stop failed: ${e.message}`));
      }
    }
  }

  /** Sets keep_hot (never paused or stopped by the idle policy). */
  setKeepHot(user: User, ref: string, keepHot: boolean): SandboxView {
    const r = this.find(user, ref);
    this.db.prepare("UPDATE sandboxes SET keep_hot = ? WHERE id = ?").run(keepHot ? 1 : 0, r.id);
    return this.view(this.find(user, ref));
  }

  // ---- snapshots and fork (issue 14) ----

  /** Filesystem snapshots; unset: snapshot and fork requests are refused. */
  snapshots?: SnapshotService;

  /** Snapshot of a sandbox's writable layer (frozen while copied). */
  async snapshot(user: User, ref: string, body: Record<string, unknown>, internalName?: string): Promise<SnapshotView> {
    if (!this.snapshots) throw new UserError(400, "snapshots are not available on this daemon");
    const r0 = this.find(user, ref);
    if (this.pending.has(r0.id)) throw reattaching(r0.name);
    if (!["running", "paused", "stopped"].includes(r0.status)) throw cannotNow(r0.name, "be snapshotted", r0.status);
    this.requireEngine(r0, "snapshot");
    const name = internalName ?? (body.name === undefined || body.name === null ? `${r0.name}-${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-")}` : validateName(body.name, "snapshot name"));
    const snaps = this.snapshots;
    const { id, dir } = snaps.reserve(user, name);
    try {
      return await this.serial(r0.id, async () => {
        const r = this.row(r0.id);
        if (!r || !["running", "paused", "stopped"].includes(r.status)) throw cannotNow(r0.name, "be snapshotted", r?.status ?? "gone");
        const state = this.live.get(r.id)?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {});
        let base: number;
        try {
          ({ base } = await this.engines.get(r.engine).snapshot(r.id, state, dir));
        } catch (e) {
          this.log(`sandbox ${r.id} (${r.name}): snapshot failed: ${(e as Error).message}`);
          throw new UserError(500, `snapshot of sandbox ${JSON.stringify(r.name)} failed (the daemon log has details)`);
        }
        const recorded = snaps.record(user, {
          id, name, sandbox: r.name, engine: r.engine, image: r.image, cpus: r.cpus, memory_mb: r.memory_mb,
          disk_mb: typeof state.diskMb === "number" ? state.diskMb : null, base, boot_encrypted: r.boot_encrypted, secret_names: r.secret_names, network: r.network,
        });
        this.broker?.copyToSnapshot(r.id, id); // its disk holds the sandbox's placeholders and trusts its CA
        return recorded;
      });
    } catch (e) {
      await snaps.discard(id).catch(() => {});
      throw e;
    }
  }

  /**
   * create with `from`: a new sandbox (new id, name, token, hostname) whose
   * writable layer is a copy of a snapshot's (by snapshot name) or of a
   * sandbox's (by name or id: snapshotted now, frozen while copied). It takes
   * the source's image, size, plain env and secret names; secret values are
   * resolved again from the owner's store now, never copied.
   * cpus, memory_mb, keep_hot and volumes may be given; nothing else.
   */
  async fork(user: User, body: Record<string, unknown>): Promise<{ sandbox: SandboxView; warnings: string[] }> {
    if (!this.snapshots) throw new UserError(400, "snapshots are not available on this daemon");
    const extra = ["template", "image", "env", "secrets", "files", "init", "disk_mb"].filter((k) => body[k] !== undefined && body[k] !== null);
    if (extra.length) throw new UserError(400, `create with from takes the source's ${extra.join(", ")}: leave ${extra.length === 1 ? "it" : "them"} out`);
    if (typeof body.from !== "string" || !body.from) throw new UserError(400, "from must be the name of a snapshot or of a sandbox");
    const name = validateName(body.name);
    if (body.keep_hot !== undefined && typeof body.keep_hot !== "boolean") throw new UserError(400, "keep_hot must be a boolean");
    const volumeMounts = validateVolumeMounts(body.volumes);
    if (volumeMounts.length && !this.volumes) throw new UserError(400, "volumes are not available on this daemon");

    // The source: a recorded snapshot, else a sandbox snapshotted now into a temporary one.
    let snap = this.snapshots.get(user, body.from);
    let temp: string | undefined;
    if (!snap) {
      const src = this.byRef.get(user.id, body.from, body.from) as Row | undefined;
      if (!src) throw notFound(`no snapshot or sandbox named ${JSON.stringify(body.from)}`);
      const tmpName = `.fork-${randomBytes(6).toString("hex")}`;
      await this.snapshot(user, src.id, {}, tmpName); // a name no user can give: never clashes, never listed
      snap = this.snapshots.get(user, tmpName)!;
      temp = tmpName;
    }
    try {
      const engine = this.engines.pick(body.engine ?? snap.engine);
      if (engine.name !== snap.engine) throw new UserError(400, `snapshot ${JSON.stringify(body.from)} is of engine ${snap.engine}; a fork runs on the same engine`);
      requireImage(this.engines.env.imagesDir, snap.image);
      const cpus = body.cpus !== undefined ? validateCpus(body.cpus) : snap.cpus;
      const memory_mb = body.memory_mb !== undefined ? validateMemory(body.memory_mb) : snap.memory_mb;
      // The fork gets its own network (lease, veth, rules) under the source's policy, within the user's cap.
      const network: NetworkPolicy = snap.network ? JSON.parse(snap.network) as NetworkPolicy : NO_NETWORK;
      requireWithinCap(network, user.max_egress, `the policy of ${JSON.stringify(body.from)}`);
      this.requireNetworking(name, network);
      const boot: BootConfig = snap.boot_encrypted ? parseBoot(await this.keyring.decrypt(snap.boot_encrypted)) : { env: {} };
      const secretNames = JSON.parse(snap.secret_names) as string[];
      const resolved = await this.secrets.resolve(user, secretNames);
      // The source's placeholders and CA (the copied disk holds them), new placeholders for secrets bound since.
      const brokering = await bootBrokering(this.broker, user.id, resolved, { snapshot: snap.id });
      const plain = resolved.values;
      const id = "sb" + randomBytes(8).toString("hex");
      const token = randomBytes(32).toString("hex");
      let attached: AttachedVolume[] = [];
      this.db.transaction(() => {
        const used = this.db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(cpus), 0) AS c, COALESCE(SUM(memory_mb), 0) AS m FROM sandboxes WHERE user_id = ? AND status NOT IN ('dead', 'lost')").get(user.id) as { n: number; c: number; m: number };
        if (used.n + 1 > user.max_sandboxes) throw new UserError(403, `quota exceeded: at most ${user.max_sandboxes} sandboxes (you have ${used.n})`);
        if (used.c + cpus > user.max_cpus) throw new UserError(403, `quota exceeded: at most ${user.max_cpus} cpus in total (${used.c} in use, ${cpus} requested)`);
        if (used.m + memory_mb > user.max_memory_mb) throw new UserError(403, `quota exceeded: at most ${user.max_memory_mb} MiB of memory in total (${used.m} in use, ${memory_mb} requested)`);
        if (this.db.prepare("SELECT 1 FROM sandboxes WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`sandbox ${JSON.stringify(name)} already exists`);
        this.admission?.check(this.db, cpus, memory_mb);
        this.db.prepare(`INSERT INTO sandboxes (id, user_id, name, engine, image, cpus, memory_mb, env_keys, secret_names, template_id, status, created_at, keep_hot, network)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'creating', ?, ?, ?)`)
          .run(id, user.id, name, engine.name, snap!.image, cpus, memory_mb, JSON.stringify(Object.keys(boot.env).sort()), snap!.secret_names, new Date().toISOString(), body.keep_hot === true ? 1 : 0, JSON.stringify(network));
        brokering?.save(id);
        if (volumeMounts.length) {
          attached = this.volumes!.claim(user, volumeMounts, id, engine.name);
          this.db.prepare("UPDATE sandboxes SET volumes = ? WHERE id = ?").run(JSON.stringify(attached), id);
        }
      }).immediate();
      const config: ConfigDrive = {
        sandbox_id: id, hostname: name, token, env: brokeredEnv(brokering, { ...Object.fromEntries(plain), ...boot.env }), files: [], ...(boot.init ? { init: boot.init } : {}),
        ...(brokering ? { ca_cert: brokering.caCert } : {}),
      };
      plain.clear();
      const tokenBlob = this.keyring.encrypt(token);
      let running: RunningSandbox;
      const link = this.prepareNetwork(id, user.name, name, network, engine.name);
      try {
        running = await engine.create({
          id, name, image: snap.image, cpus, memoryMb: memory_mb, ...(snap.disk_mb ? { diskMb: snap.disk_mb } : {}),
          ...(attached.length ? { volumes: attached } : {}), from: { dir: this.snapshots.dir(snap.id), base: snap.base }, config, ...(link ? { network: link } : {}),
        });
      } catch (e) {
        await this.unprepareNetwork(id, link);
        this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(id);
        this.volumes?.release(id);
        this.log(`sandbox ${id} (fork of ${snap.sandbox}) failed to start on ${engine.name}: ${(e as Error).message}`);
        throw new UserError(500, `sandbox failed to start on engine ${engine.name} (the daemon log has details)`);
      } finally {
        config.env = {};
      }
      this.db.prepare("UPDATE sandboxes SET status = 'running', engine_state = ?, token_encrypted = ?, boot_encrypted = ? WHERE id = ?")
        .run(JSON.stringify(running.state), await tokenBlob, snap.boot_encrypted, id);
      this.attach(running);
      this.touch(id);
      recordEvent(this.db, "sandbox.created", user.name, name, { id, engine: engine.name, secrets: secretNames, from: temp ? snap.sandbox : snap.name });
      return { sandbox: this.view(this.row(id)!), warnings: [] };
    } finally {
      if (temp) await this.snapshots.delete(user, temp).catch(() => {});
    }
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
      await Promise.all(rows.filter((r) => keepsNetwork(r) && policyOf(r).egress !== "none").map((r) => this.net!.reattach(r.id, this.userName(r), r.name, policyOf(r))
        .catch((e: Error) => this.log(`sandbox ${r.id}: restoring its network failed: ${e.message}`))));
    }
    try {
      await Promise.all(ENGINE_NAMES.map((n) => this.engines.get(n).sweep().catch((e: Error) => this.log(`${n}: sweeping trash failed: ${e.message}`))));
      await Promise.all([
        ...rows.filter((r) => r.status === "creating").map(async (r) => {
          // A create the client never saw succeed: undo it entirely.
          if (await this.engineDestroy(r, "rolling back an interrupted create")) {
            this.db.prepare("DELETE FROM sandboxes WHERE id = ? AND status = 'creating'").run(r.id);
            this.volumes?.release(r.id);
            recordEvent(this.db, "sandbox.create_rolled_back", null, r.name, { id: r.id });
            this.log(`sandbox ${r.id} (${r.name}): an interrupted create was rolled back`);
            sum.rolledBack++;
          }
        }),
        ...rows.filter((r) => r.status === "deleting").map(async (r) => {
          if (await this.engineDestroy(r, "finishing an interrupted delete")) {
            this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(r.id);
            this.volumes?.release(r.id);
            recordEvent(this.db, "sandbox.destroyed", null, r.name, { id: r.id, finished_after_restart: true });
            this.log(`sandbox ${r.id} (${r.name}): an interrupted delete was finished`);
            sum.deleted++;
          }
        }),
        // A stop cut short: finish it. A start cut short: undo it. Both end stopped (writable layer kept).
        ...rows.filter((r) => r.status === "stopping" || r.status === "starting").map(async (r) => {
          try {
            const kept = await this.engines.get(r.engine).stop(r.id, r.engine_state ? JSON.parse(r.engine_state) : {});
            await this.net?.release(r.id);
            this.setStatus(r.id, r.status, "stopped", JSON.stringify(kept));
            this.log(`sandbox ${r.id} (${r.name}): an interrupted ${r.status === "stopping" ? "stop was finished" : "start was undone"}`);
          } catch (e) {
            this.log(`sandbox ${r.id}: finishing an interrupted ${r.status} failed (retried at the next start): ${(e as Error).message}`);
          }
        }),
        // Paused sandboxes stay paused (frozen, no agent connection until resumed) if they still exist.
        ...rows.filter((r) => r.status === "paused").map(async (r) => {
          const state = r.engine_state ? JSON.parse(r.engine_state) : {};
          const alive = await this.engines.get(r.engine).alive(r.id, state).catch(() => true);
          if (!alive) await this.markDead(r, "its processes are gone");
        }),
        ...toReattach.map(async (r) => {
          const outcome = await this.tryReattach(r);
          this.pending.delete(r.id);
          sum[outcome]++;
        }),
      ]);
      // Rolled-back creates and finished deletes remove their writable layers in the
      // background: wait for them, so "recovered" means nothing of them is left.
      await Promise.all((["ns", "vm"] as const).map((n) => this.engines.get(n).sweep().catch(() => {})));
    } finally {
      for (const r of toReattach) this.pending.delete(r.id);
    }
    if (this.stopping) return sum;
    if (this.net) {
      const keep = new Set((this.db.prepare("SELECT id, status, engine FROM sandboxes").all() as { id: string; status: string; engine: string }[])
        .filter((r) => r.status === "creating" || r.status === "deleting" || keepsNetwork(r)).map((r) => r.id));
      await this.net.sweep(keep).then((n) => { if (n) this.log(`removed ${n} network leftover(s) of sandboxes that are gone`); }, (e: Error) => this.log(`sweeping network leftovers failed: ${e.message}`));
    }
    // Sandboxes on the host with no row: their owner was deleted while no daemon ran, or a crash hit between the engine and the database.
    if (!this.ownRuntime) {
      this.log("the runtime dir is marked by another daemon instance: sandboxes found there without a row are left alone");
      return sum;
    }
    const known = new Set((this.db.prepare("SELECT id FROM sandboxes").all() as { id: string }[]).map((r) => r.id));
    for (const name of ENGINE_NAMES) {
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
    await this.idleTick();
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
    if (!this.setStatus(r.id, r.status === "paused" ? "paused" : "running", "dead")) return;
    this.redactors.forget(r.id);
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
        // Its volume claims and broker records went with the rows (ON DELETE CASCADE); its redactor goes here.
        this.redactors.forget(id);
        this.volumes?.release(id);
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

  /**
   * vm sandboxes with volumes: the guest's page cache is written out (sync in
   * the guest) before QEMU is killed, so what was written reaches the volume.
   * Best effort, bounded by a few seconds (a paused or silent guest keeps
   * what its filesystem committed, at most ext4's 5 s commit interval behind).
   */
  private async flushVolumes(r: Row): Promise<void> {
    if (r.engine !== "vm" || !r.volumes || r.volumes === "[]" || r.status !== "running") return;
    const s = this.live.get(r.id);
    if (!s || s.agent.closed) return;
    const e = s.agent.exec({ cmd: ["/bin/sync"], timeout_ms: 5000 });
    await Promise.race([e.done.catch(() => {}), new Promise((res) => setTimeout(res, 6000).unref())]);
  }

  private async destroyRow(r: Row): Promise<void> {
    await this.flushVolumes(r);
    // Written first: a crash from here on is finished at the next start, not brought back.
    this.db.prepare("UPDATE sandboxes SET status = 'deleting' WHERE id = ?").run(r.id);
    const s = this.live.get(r.id);
    this.live.delete(r.id);
    s?.agent.close();
    await this.engines.get(r.engine).destroy(r.id, s?.state ?? (r.engine_state ? JSON.parse(r.engine_state) : {}));
    await this.net?.release(r.id);
    this.db.prepare("DELETE FROM sandboxes WHERE id = ?").run(r.id);
    this.redactors.forget(r.id);
    this.volumes?.release(r.id);
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
    requireWithinCap(after, user.max_egress);
    // Running or paused, or a stopped vm (it keeps its network): applied at once. A stopped ns sandbox: stored, applied when it starts.
    if (!["running", "paused", "stopped"].includes(r.status) && after.egress !== "none") throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status})`);
    if (after.egress !== "none" && keepsNetwork(r)) await this.net?.setPolicy(r.id, after);
    this.db.prepare("UPDATE sandboxes SET network = ? WHERE id = ?").run(JSON.stringify(after), r.id);
    recordEvent(this.db, "net.policy_changed", user.name, r.name, { id: r.id, egress: after.egress, allow_hosts: after.allow_hosts, allow_cidrs: after.allow_cidrs });
    return this.view(this.row(r.id)!);
  }

  /** Where the daemon reaches a running, networked sandbox's ports (its address on its veth). */
  peer(user: User, ref: string): { id: string; name: string; address: string } {
    const r = this.find(user, ref);
    if (r.status !== "running") throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status})`);
    const address = this.net?.addressOf(r.id);
    if (!address) throw new UserError(409, `sandbox ${JSON.stringify(r.name)} has no network (egress none): its ports cannot be reached; create it with egress public or deny`);
    return { id: r.id, name: r.name, address };
  }

  /** The TCP ports listening in a running sandbox (ns: read from its network namespace on the host; vm: asked of the guest). */
  async ports(user: User, ref: string): Promise<ListeningPort[]> {
    const r = this.find(user, ref);
    const s = this.live.get(r.id);
    if (!s || r.status !== "running") throw new UserError(409, `sandbox ${JSON.stringify(r.name)} is not running (status ${r.status})`);
    if (s.engine === "vm") return guestListeningPorts(s.agent);
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
    if (!r) throw notFound(`sandbox ${JSON.stringify(ref)} not found`, "sandbox_not_found");
    return r;
  }
}

function validateRedact(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new UserError(400, "redact must be true or false");
  return v;
}

/** A sandbox whose reattach after a restart is still under way: a 503 the client may retry at once. */
function reattaching(name: string): UserError {
  return new UserError(503, `sandbox ${JSON.stringify(name)} is being reattached after a daemon restart; retry in a moment`, { "Retry-After": "1" }, "reattaching");
}
