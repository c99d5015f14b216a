// Contract entries of the routes added by the lifecycle, sessions, web
// terminal, events, whoami and cp work. Their bodies are checked by their
// handlers (the messages name the rule); here they are documented so that
// GET /openapi.json lists every route the daemon serves, and their response
// bodies have schemas like those of routes.ts (the test harness checks every
// response against them: src/testing/contract-check.ts).
import { BINARY, EMPTY, json, type Body, type Method, type RouteSpec } from "./route.js";
import type { ErrorCode } from "./codes.js";
import { Sandbox } from "./sandboxes.js";
import { EventPage, Event, Me } from "./account.js";
import { Session, SessionList, ShareLink, ShareRevoked } from "./sessions.js";
import { ArchiveWritten, PortList, Snapshot, SnapshotList, Volume, VolumeList } from "./storage.js";


type Entry = Omit<RouteSpec, "method" | "path">;
const sb: ErrorCode[] = ["sandbox_not_found"];
const e = (summary: string, responses: Record<number, Body | Body[]>, more: Partial<Entry> = {}): Entry => ({ summary, responses, ...more });

const MORE: Record<string, Entry> = {
  // whoami, cp (docs/cli.md)
  "GET /me": e("The caller: name, quotas and usage", { 200: json(Me) }),
  "GET /sandboxes/:id/archive": e("A tar stream of a file or directory tree in the sandbox (?path=)", { 200: BINARY }, { errors: [...sb, "not_running", "file_not_found", "forbidden"] }),
  "PUT /sandboxes/:id/archive": e("Extract a tar stream under a directory in the sandbox (?path=, ?rename=)", { 200: json(ArchiveWritten) }, { body: "binary", errors: [...sb, "not_running", "forbidden", "payload_too_large"] }),
  // the audit trail (docs/secrets.md)
  "GET /events": e("The caller's audit events (?since, ?type, ?limit, ?cursor; ?follow=1 streams JSON lines)", { 200: [json(EventPage), { ndjson: Event }] }),
  // lifecycle (docs/lifecycle.md)
  "POST /sandboxes/:id/stop": e("Stop a sandbox: processes end, its disk is kept", { 200: json(Sandbox) }, { errors: [...sb, "conflict", "not_supported", "egress_cap_exceeded"], idempotent: true }),
  "POST /sandboxes/:id/start": e("Start a stopped sandbox: the config drive is built again from the current secrets", { 200: json(Sandbox) }, { errors: [...sb, "conflict", "daemon_busy"], idempotent: true }),
  "POST /sandboxes/:id/pause": e("Freeze a sandbox's processes in memory", { 200: json(Sandbox) }, { errors: [...sb, "conflict", "not_supported", "egress_cap_exceeded"], idempotent: true }),
  "POST /sandboxes/:id/resume": e("Thaw a paused sandbox", { 200: json(Sandbox) }, { errors: [...sb, "conflict"], idempotent: true }),
  "PUT /sandboxes/:id/keep-hot": e("Exempt a sandbox from the idle policy ({keep_hot})", { 200: json(Sandbox) }, { errors: sb }),
  "POST /volumes": e("Create a volume ({name, size_mb})", { 201: json(Volume) }, { errors: ["name_taken", "quota_exceeded"] }),
  "GET /volumes": e("The caller's volumes", { 200: json(VolumeList) }),
  "DELETE /volumes/:name": e("Delete a volume (refused while attached)", { 204: EMPTY }, { errors: ["volume_not_found", "in_use", "conflict"] }),
  "POST /sandboxes/:id/snapshots": e("Snapshot a sandbox's filesystem ({name})", { 201: json(Snapshot) }, { errors: [...sb, "name_taken", "not_supported"] }),
  "GET /snapshots": e("The caller's snapshots", { 200: json(SnapshotList) }),
  "DELETE /snapshots/:name": e("Delete a snapshot", { 204: EMPTY }, { errors: ["snapshot_not_found"] }),
  // networking (docs/networking.md)
  "PATCH /sandboxes/:id": e("Change a sandbox's egress policy ({network}): running or paused, new connections follow it within a second; stopped, it applies at start", { 200: json(Sandbox) }, { errors: [...sb, "conflict", "not_supported", "egress_cap_exceeded"], idempotent: true }),
  "GET /sandboxes/:id/ports": e("TCP ports listening in the sandbox", { 200: json(PortList) }, { errors: [...sb, "not_running", "not_supported"] }),
  // sessions and the web terminal (docs/sessions.md)
  "GET /sandboxes/:id/sessions": e("A sandbox's sessions", { 200: json(SessionList) }, { errors: [...sb, "not_running"] }),
  "POST /sandboxes/:id/sessions": e("Start a background session ({cmd, env, keep, idle_timeout_sec})", { 201: json(Session) }, { errors: [...sb, "not_running", "too_many_sessions"] }),
  "GET /sandboxes/:id/sessions/:sid": e("One session", { 200: json(Session) }, { errors: [...sb, "session_not_found"] }),
  "DELETE /sandboxes/:id/sessions/:sid": e("Signal a session (?signal=, default SIGKILL)", { 200: json(Session) }, { errors: [...sb, "session_not_found"] }),
  "GET /sandboxes/:id/sessions/:sid/logs": e("A session's output: its scrollback, then more with ?follow=true", { 200: BINARY }, { errors: [...sb, "session_not_found"] }),
  "POST /sandboxes/:id/share": e("A one-use web terminal link ({ttl_sec})", { 201: json(ShareLink) }, { errors: [...sb, "not_running"] }),
  "DELETE /sandboxes/:id/share": e("Revoke a sandbox's web terminal links and close the terminals they opened", { 200: json(ShareRevoked) }, { errors: sb }),
  "GET /share": e("The web terminal page (the token is in the URL fragment)", { 200: BINARY }, { public: true }),
  "GET /share/app.js": e("The web terminal's script", { 200: BINARY }, { public: true }),
  "GET /share/xterm.js": e("xterm.js, served by the daemon", { 200: BINARY }, { public: true }),
  "GET /share/xterm.css": e("xterm.js's style sheet", { 200: BINARY }, { public: true }),
};

/** The contract entry of a route declared above (a route missing here is a bug: it throws at start). */
export function contract(method: Method, path: string): RouteSpec {
  const entry = MORE[`${method} ${path}`];
  if (!entry) throw new Error(`no contract entry for ${method} ${path} (src/api/routes-more.ts)`);
  return { method, path, ...entry };
}

/** Every route declared above, as RouteSpecs (the contract check of the test harness reads them). */
export const MORE_ROUTES: RouteSpec[] = Object.keys(MORE).map((k) => {
  const [method, path] = k.split(" ");
  return contract(method as Method, path);
});
