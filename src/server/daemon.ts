// `bhatti serve`: the daemon. Opens the store and the keyring, listens on TCP
// and on a unix socket, and shuts down gracefully on SIGINT/SIGTERM.
import { createServer, type Server } from "node:http";
import { chmodSync, existsSync, rmSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import { ensureDataDir, dataPaths } from "../util/paths.js";
import { openDb, purgeFreedPages } from "../store/db.js";
import { openKeyring } from "../secrets/open.js";
import { SecretService } from "../secrets/service.js";
import { UserService } from "../users/service.js";
import { App } from "./app.js";
import { RateLimiter } from "./ratelimit.js";
import { secretRoutes } from "./routes/secrets.js";
import { claimPidFile, livePid, releasePidFile } from "./pidfile.js";
import { VERSION } from "../version.js";
import { Engines, type EngineChoice } from "../sandboxes/engines.js";
import { SandboxService } from "../sandboxes/service.js";
import { TemplateService } from "../sandboxes/templates.js";
import { sandboxRoutes } from "./routes/sandboxes.js";
import { lifecycleRoutes } from "./routes/lifecycle.js";
import { volumeRoutes } from "./routes/volumes.js";
import { VolumeService } from "../volumes/service.js";
import { snapshotRoutes } from "./routes/snapshots.js";
import { SnapshotService } from "../snapshots/service.js";
import { imageRoutes } from "./routes/images.js";
import { meRoutes } from "./routes/me.js";
import { archiveRoutes } from "./routes/archive.js";
import { eventRoutes } from "./routes/events.js";
import { startEventRetention, DEFAULT_EVENTS_RETENTION_DAYS } from "../events/retention.js";
import { metaRoutes } from "./routes/meta.js";
import { ENGINE_NAMES } from "../engine/names.js";
import { sessionRoutes } from "./routes/sessions.js";
import { sessionWebSocket, SESSION_WS_RE } from "./session-ws.js";
import { shareRoutes } from "./routes/share.js";
import { shareWebSocket, SHARE_WS_PATH } from "./share-ws.js";
import { ShareTokens } from "./share.js";
import { execWebSocket } from "./ws.js";
import { runtimeDirFor } from "../util/paths.js";
import { ConnectionGate, DEFAULT_LIMITS, type ConnectionLimits } from "./connections.js";
import { sweepStaleRuntimeDirs } from "../engine/stale-runtime.js";
import { endStrayProbes } from "../engine/vm/strays.js";
import { stopProbes } from "../engine/vm/accel.js";
import { planCapacity } from "../engine/ns/limits.js";
import { Admission, DEFAULT_OVERCOMMIT_CPUS, DEFAULT_OVERCOMMIT_MEMORY } from "../sandboxes/admission.js";
import { claimInstance } from "../store/instance.js";
import { claimRuntimeDir, ensureRuntimeDir } from "../engine/runtime.js";
import { NetManager } from "../net/egress.js";
import { BrokerStore } from "../broker/store.js";
import { parseUpstream } from "../net/upstream.js";
import { networkRoutes } from "./routes/network.js";
import { portsRoutes, portUpgrades, proxyRequests } from "./routes/ports.js";
import type { Egress } from "../net/policy.js";

export interface ServeOptions {
  dataDir: string;
  listen: string; // host:port
  rateLimit: number; // requests per second per user; 0 = off
  engine: EngineChoice;
  /** Connection limits (see connections.ts); defaults in DEFAULT_LIMITS. */
  limits?: Partial<ConnectionLimits>;
  image?: string; // default image of sandboxes and templates that name none (default "minimal")
  log?: (line: string) => void;
  maxSandboxes?: number; // host-wide; default computed from host limits (src/engine/ns/limits.ts)
  overcommitMemory?: number; // default DEFAULT_OVERCOMMIT_MEMORY
  overcommitCpus?: number; // default DEFAULT_OVERCOMMIT_CPUS
  eventsRetentionDays?: number; // default DEFAULT_EVENTS_RETENTION_DAYS
  idleWarmSeconds?: number; // idle policy (issue 14): pause after this long without API activity; unset: never
  idleColdMinutes?: number; // ...and stop (where the engine can) after this long; unset: never
  // networking (docs/networking.md)
  dnsUpstream?: string; // IPV4[:PORT]; default the host's first nameserver
  netPool?: string; // CIDR of sandbox addresses; default DEFAULT_POOL
  privateCidrs?: string[]; // more ranges denied unless a sandbox's allow_cidrs names them
  defaultEgress?: Egress; // policy of sandboxes that name none (default public)
}

// Timeouts of both servers (node:http): the request head must arrive within
// HEADERS_TIMEOUT and the whole request (with its body) within REQUEST_TIMEOUT;
// an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT.
export const HEADERS_TIMEOUT = 10_000;
export const REQUEST_TIMEOUT = 300_000;
export const KEEP_ALIVE_TIMEOUT = 30_000;

export const DAEMON_MARKER = "serve";

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen must be HOST:PORT (got ${JSON.stringify(s)})`);
  return { host: m[1].replace(/^\[|\]$/g, ""), port };
}

export async function serve(opts: ServeOptions): Promise<{ close: () => Promise<void> }> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${new Date().toISOString()} ${l}\n`));
  const { host, port } = parseListen(opts.listen);
  // Before anything is opened: a maximum that does not fit the host's tables is refused here.
  const capacity = planCapacity(opts.maxSandboxes);
  const admission = new Admission({
    maxSandboxes: capacity.maxSandboxes,
    overcommitMemory: opts.overcommitMemory ?? DEFAULT_OVERCOMMIT_MEMORY,
    overcommitCpus: opts.overcommitCpus ?? DEFAULT_OVERCOMMIT_CPUS,
  });
  const dataDir = ensureDataDir(opts.dataDir);
  const paths = dataPaths(dataDir);

  const rotating = livePid(paths.rotateLock, "rotate");
  if (rotating) throw new Error(`a key rotation (pid ${rotating}) is running on this data dir; start the daemon after it finishes`);
  claimPidFile(paths.pidFile, DAEMON_MARKER, "another bhatti daemon");

  const db = openDb(paths.db);
  let keyring;
  try {
    keyring = await openKeyring(paths.key, db);
  } catch (e) {
    db.close();
    releasePidFile(paths.pidFile);
    throw e;
  }
  purgeFreedPages(db); // a purge skipped while an operator command read the database is caught up here
  const users = new UserService(db);
  const secrets = new SecretService(db, keyring);
  const runtimeDir = runtimeDirFor(dataDir);
  let sandboxes: SandboxService;
  let app: App;
  const shares = new ShareTokens();
  const gate = new ConnectionGate({ ...DEFAULT_LIMITS, ...opts.limits }, log);
  let engines: Engines;
  try {
    // Who we are: only what this instance can prove is its own is ever touched.
    const instance = claimInstance(db, dataDir);
    if (instance.inheritedFrom) {
      log(`state.db was made for another data dir (${instance.inheritedFrom.dataDir}, instance ${instance.inheritedFrom.id}): this is a new instance (${instance.id}); ` +
        `its ${instance.lost.length} sandbox row(s) belong to that daemon and are marked lost, nothing of them is touched` +
        (instance.lost.length ? `: ${instance.lost.map((r) => `${r.name} (${r.id})`).join(", ")}` : ""));
    }
    let foreign: string | null = null;
    try {
      await ensureRuntimeDir(runtimeDir, dataDir); // it records which data dir the runtime dir belongs to
      foreign = claimRuntimeDir(runtimeDir, instance.id);
    } catch (e) {
      log(`runtime dir ${runtimeDir}: ${(e as Error).message}`);
    }
    if (foreign) log(`runtime dir ${runtimeDir} holds sandboxes of another bhatti instance (${foreign}), not of this state.db: they are left alone`);
    cleanUpAfterDeadDaemons(runtimeDir, log);
    engines = new Engines({ dataDir, runtimeDir, imagesDir: paths.images, instance: instance.id, ageRecipient: keyring.recipient }, opts.engine);
    const chosen = await engines.init();
    log(`engine: ${chosen} (${JSON.stringify(engines.describe().engines)})`);
    const templates = new TemplateService(db, paths.images, opts.image);
    for (const line of capacity.log) log(line);
    log(admission.describe());
    sandboxes = new SandboxService(db, secrets, templates, engines, keyring, log, admission);
    const broker = new BrokerStore(db, keyring, secrets); // brokered secrets (issue 11): the proxy asks it, creates fill it
    sandboxes.broker = broker;
    sandboxes.ownRuntime = !foreign;
    sandboxes.idlePolicy = { warmMs: Math.round((opts.idleWarmSeconds ?? 0) * 1000), coldMs: Math.round((opts.idleColdMinutes ?? 0) * 60_000) };
    sandboxes.defaultNetwork = { egress: opts.defaultEgress ?? "public", allow_hosts: [], allow_cidrs: [] };
    try {
      sandboxes.net = new NetManager(db, log, {
        instance: instance.id, runtimeDir, pool: opts.netPool, privateCidrs: opts.privateCidrs, broker,
        ...(opts.dnsUpstream ? { upstream: parseUpstream(opts.dnsUpstream) } : {}),
      });
      await sandboxes.net.checkPool();
    } catch (e) {
      sandboxes.net = undefined;
      if (opts.dnsUpstream || opts.netPool || opts.privateCidrs?.length || (opts.defaultEgress && opts.defaultEgress !== "none")) throw e; // an operator's own setting cannot be met: say so
      sandboxes.defaultNetwork = { egress: "none", allow_hosts: [], allow_cidrs: [] };
      log(`networking unavailable, sandboxes get loopback only: ${(e as Error).message}`);
    }
    app = new App({ users, limiter: new RateLimiter(opts.rateLimit, Math.max(1, opts.rateLimit * 2)), log, connections: gate });
    metaRoutes(app.router, () => ({ status: "ok", version: VERSION, ...engines.describe() }));
    secretRoutes(app.router, secrets);
    sandboxRoutes(app.router, sandboxes, templates, app.streams);
    lifecycleRoutes(app.router, sandboxes);
    sandboxes.volumes = new VolumeService(db, dataDir);
    volumeRoutes(app.router, sandboxes.volumes);
    sandboxes.snapshots = new SnapshotService(db, dataDir);
    snapshotRoutes(app.router, sandboxes, sandboxes.snapshots);
    networkRoutes(app.router, sandboxes);
    portsRoutes(app.router, sandboxes);
    imageRoutes(app.router, paths.images, templates.defaultImage);
    meRoutes(app.router, db);
    archiveRoutes(app.router, sandboxes, app.streams);
    eventRoutes(app.router, db, app.streams);
    sessionRoutes(app.router, sandboxes, app.streams);
    shareRoutes(app.router, sandboxes, shares, db);
  } catch (e) {
    db.close();
    releasePidFile(paths.pidFile);
    throw e;
  }
  const reaper = setInterval(() => { sandboxes.reapOrphans().catch(() => {}); }, 2000);
  reaper.unref();
  const retention = startEventRetention(db, opts.eventsRetentionDays ?? DEFAULT_EVENTS_RETENTION_DAYS, log);

  const timeouts = { headersTimeout: HEADERS_TIMEOUT, requestTimeout: REQUEST_TIMEOUT, keepAliveTimeout: KEEP_ALIVE_TIMEOUT, connectionsCheckingInterval: 1000 };
  const proxied = proxyRequests(app, sandboxes); // /sandboxes/:id/proxy/:port/* streams, outside the JSON router
  const listener: typeof app.listener = (req, res) => { if (!proxied(req, res)) app.listener(req, res); };
  const tcp = createServer(timeouts, listener);
  const unix = createServer(timeouts, listener);
  const execUpgrade = execWebSocket(app, sandboxes, log);
  const sessionUpgrade = sessionWebSocket(app, sandboxes, log);
  const shareUpgrade = shareWebSocket(app, sandboxes, shares, log);
  const ports = portUpgrades(app, sandboxes);
  const upgrade: typeof execUpgrade = (req, socket, head) => {
    if (ports(req, socket, head)) return;
    const path = (req.url ?? "").split("?")[0];
    (path === SHARE_WS_PATH ? shareUpgrade : SESSION_WS_RE.test(path) ? sessionUpgrade : execUpgrade)(req, socket, head);
  };
  for (const server of [tcp, unix]) {
    server.on("upgrade", upgrade);
    gate.attach(server);
  }
  await listen(tcp, () => tcp.listen(port, host));
  await removeStaleSocket(paths.socket);
  await listen(unix, () => unix.listen(paths.socket));
  chmodSync(paths.socket, 0o600);
  // Once listening, a server's 'error' is a failed accept (EMFILE, ENFILE...):
  // that connection is lost, the daemon keeps serving.
  let lastAcceptError = 0;
  for (const server of [tcp, unix]) {
    server.on("error", (e: NodeJS.ErrnoException) => {
      if (Date.now() - lastAcceptError < 10_000) return;
      lastAcceptError = Date.now();
      log(`accepting a connection failed: ${e.code ?? e.name}`);
    });
  }
  const addr = tcp.address();
  const bound = typeof addr === "object" && addr ? `${addr.address.includes(":") ? `[${addr.address}]` : addr.address}:${addr.port}` : opts.listen;
  log(`bhatti ${VERSION} listening on http://${bound} and unix:${paths.socket} (data dir ${dataDir})`);

  // Reattach after listening, in the background: a sandbox that does not
  // answer must not hold up the daemon (nor be destroyed for it).
  const recovery = sandboxes.recover().then(
    (r) => log(`recovered sandboxes: ${r.reattached} reattached, ${r.unreachable} unreachable, ${r.dead} dead, ${r.rolledBack} interrupted creates rolled back, ${r.deleted} interrupted deletes finished, ${r.orphans} orphans removed, ${r.lost} lost`),
    (e: Error) => log(`recovering sandboxes failed: ${e.message}`),
  );
  sandboxes.startReconciler();

  let closing: Promise<void> | null = null;
  const close = () => (closing ??= (async () => {
    log("shutting down: no new connections, finishing in-flight requests");
    const probes = stopProbes(); // an accelerator probe still running is only the daemon's helper
    const stopped = Promise.all([tcp, unix].map((s) => new Promise<void>((r) => s.close(() => r()))));
    tcp.closeIdleConnections();
    unix.closeIdleConnections();
    // Exec streams (HTTP and WebSocket) get a final daemon_stopping message and their commands are killed; downloads
    // and uploads get STOP_GRACE_MS to finish. Then all of them are cut: nothing open holds the daemon up.
    const open = await app.streams.stopAll();
    if (open) log(`ended ${open} open stream(s)`);
    const deadline = Date.now() + 10_000;
    while (app.busy > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    tcp.closeAllConnections();
    unix.closeAllConnections();
    await stopped;
    clearInterval(reaper);
    clearInterval(retention);
    gate.close();
    await probes;
    sandboxes.detachAll(); // sandboxes keep running; the next daemon reattaches them
    await sandboxes.net?.close().catch((e: Error) => log(`closing the network listeners: ${e.message}`));
    // A reattach still under way ends by its own timeout; it no longer writes once detachAll ran.
    // (The losing timer is unref'd: a pending one would keep the process alive until the deadline.)
    await Promise.race([recovery, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    const rows = (db.prepare("SELECT COUNT(*) AS n FROM sandboxes").get() as { n: number }).n;
    db.close();
    // With no sandbox left (in the database or on the host), nothing needs the
    // runtime dir (ownership layers, runc state): free the tmpfs.
    const onHost = (await Promise.all(ENGINE_NAMES.map((n) => engines.get(n).list().catch(() => ["?"])))).flat();
    if (rows === 0 && onHost.length === 0) rmSync(runtimeDir, { recursive: true, force: true });
    try { unlinkSync(paths.socket); } catch { /* gone */ }
    releasePidFile(paths.pidFile);
    log("stopped");
  })());
  return { close };
}

/**
 * What a daemon killed on this host may have left: accelerator probe QEMUs
 * (orphaned ones only; see strays.ts) and runtime dirs of data dirs that are
 * gone (see stale-runtime.ts). Logged; never stops the start.
 */
function cleanUpAfterDeadDaemons(ownRuntimeDir: string, log: (line: string) => void): void {
  try {
    for (const p of endStrayProbes()) {
      log(`ended a stray accelerator probe: pid ${p.pid} (parent ${p.ppid}), qemu -accel ${p.accel} -kernel ${p.kernel}`);
    }
    const sweep = sweepStaleRuntimeDirs(ownRuntimeDir);
    for (const r of sweep.removed) {
      log(`removed the runtime dir ${r.dir} of the gone data dir ${r.dataDir}${r.uidSlots ? ` (freed ${r.uidSlots} uid slot(s))` : ""}`);
    }
    if (sweep.kept.length) log(`runtime dirs left alone: ${sweep.kept.map((k) => `${k.dir} (${k.why})`).join("; ")}`);
  } catch (e) {
    log(`cleaning up after dead daemons failed: ${(e as Error).message}`);
  }
}

function listen(server: Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.once("listening", () => { server.off("error", reject); resolve(); });
    start();
  });
}

/** A socket file left by a crashed daemon is removed; one that answers belongs to a live daemon. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await new Promise<boolean>((r) => {
    const s = connect(path);
    s.once("connect", () => { s.destroy(); r(true); });
    s.once("error", () => r(false));
  });
  if (alive) throw new Error(`${path} is in use by another process`);
  unlinkSync(path);
}
