// The web terminal (issue 12): POST/DELETE /sandboxes/:id/share issue and
// revoke one-time tokens (share.ts); GET /share/ serves the page, its script
// and xterm.js from node_modules (no CDN), under a strict CSP. The page reads
// the token from its URL fragment and exchanges it over GET /share/ws.
import { contract } from "../../api/routes-more.js";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import { HANDLED, Reply } from "../reply.js";
import { badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";
import { DEFAULT_SHARE_SEC, MAX_SHARE_SEC, type ShareTokens } from "../share.js";
import type { DB } from "../../store/db.js";
import { recordEvent } from "../../store/events.js";

const WEB = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "web", "share");
const require = createRequire(import.meta.url);
const XTERM = dirname(require.resolve("@xterm/xterm/package.json"));

// Scripts only from this origin, no inline script, no eval; xterm.js adds <style> elements, hence inline styles.
export const SHARE_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
  "img-src 'none'; font-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSETS: Record<string, { file: string; type: string }> = {
  "/share": { file: join(WEB, "index.html"), type: "text/html; charset=utf-8" },
  "/share/app.js": { file: join(WEB, "app.js"), type: "text/javascript; charset=utf-8" },
  "/share/xterm.js": { file: join(XTERM, "lib", "xterm.js"), type: "text/javascript; charset=utf-8" },
  "/share/xterm.css": { file: join(XTERM, "css", "xterm.css"), type: "text/css; charset=utf-8" },
};

export function shareRoutes(router: Router, sandboxes: SandboxService, tokens: ShareTokens, db: DB): void {
  router.route(contract("POST", "/sandboxes/:id/share"), async ({ req, user, params }) => {
    const sb = sandboxes.get(user, params.id);
    await sandboxes.ready(user, sb.id); // running (a paused one is woken), or the error says why
    const body = req.headers["content-length"] === "0" || (req.headers["content-length"] === undefined && !req.headers["transfer-encoding"]) ? {} : await readJson(req);
    const ttl = body.ttl_sec ?? DEFAULT_SHARE_SEC;
    if (typeof ttl !== "number" || !(ttl > 0) || ttl > MAX_SHARE_SEC) throw badRequest(`ttl_sec must be a number of seconds between 0 and ${MAX_SHARE_SEC}`);
    const t = tokens.issue(user, sb.id, ttl);
    recordEvent(db, "sandbox.shared", user.name, sb.name, { expires_at: t.expires_at });
    return new Reply(201, { sandbox: sb.name, path: `/share/#${t.token}`, token: t.token, expires_at: t.expires_at });
  });
  router.route(contract("DELETE", "/sandboxes/:id/share"), ({ user, params }) => {
    const sb = sandboxes.get(user, params.id);
    const r = tokens.revoke(sb.id);
    recordEvent(db, "sandbox.share_revoked", user.name, sb.name, r);
    return { sandbox: sb.name, ...r };
  });
  for (const [path, a] of Object.entries(ASSETS)) {
    const body = readFileSync(a.file);
    router.route(contract("GET", path), ({ res }) => {
      res.writeHead(200, {
        "Content-Type": a.type, "Content-Length": body.length, "Content-Security-Policy": SHARE_CSP,
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
      });
      res.end(body);
      return HANDLED;
    });
  }
}
