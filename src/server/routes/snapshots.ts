// Snapshots (issue 14): POST /sandboxes/:id/snapshots {name?}, GET /snapshots,
// DELETE /snapshots/:name. A fork is POST /sandboxes with `from`.
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import { Reply } from "../reply.js";
import type { SandboxService } from "../../sandboxes/service.js";
import type { SnapshotService } from "../../snapshots/service.js";

export function snapshotRoutes(router: Router, sandboxes: SandboxService, snapshots: SnapshotService): void {
  router.route(contract("POST", "/sandboxes/:id/snapshots"), async ({ req, user, params }) => {
    // The body is optional: none (or an empty one) means defaults.
    const empty = req.headers["content-length"] === "0" || (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined);
    const body = empty ? {} : await readJson(req);
    return new Reply(201, await sandboxes.snapshot(user, params.id, body));
  });
  router.route(contract("GET", "/snapshots"), ({ user }) => snapshots.list(user));
  router.route(contract("DELETE", "/snapshots/:name"), async ({ user, params }) => {
    await snapshots.delete(user, params.name);
    return new Reply(204);
  });
}
