// Sandbox lifecycle (issue 14): stop/start, pause/resume, keep-hot.
// Each answers with the sandbox's view (its new status). An engine that cannot
// do the step on this host answers 400 naming the reason (SandboxService).
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import { badRequest } from "../../util/errors.js";
import type { SandboxService } from "../../sandboxes/service.js";

export function lifecycleRoutes(router: Router, sandboxes: SandboxService): void {
  router.route(contract("POST", "/sandboxes/:id/stop"), ({ user, params }) => sandboxes.stop(user, params.id));
  router.route(contract("POST", "/sandboxes/:id/start"), ({ user, params }) => sandboxes.start(user, params.id));
  router.route(contract("POST", "/sandboxes/:id/pause"), ({ user, params }) => sandboxes.pause(user, params.id));
  router.route(contract("POST", "/sandboxes/:id/resume"), ({ user, params }) => sandboxes.resume(user, params.id));
  router.route(contract("PUT", "/sandboxes/:id/keep-hot"), async ({ req, user, params }) => {
    const body = await readJson(req);
    if (typeof body.keep_hot !== "boolean") throw badRequest("keep_hot must be a boolean");
    return sandboxes.setKeepHot(user, params.id, body.keep_hot);
  });
}
