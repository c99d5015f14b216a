// PATCH /sandboxes/:id {network}: a running sandbox's egress policy (issue 10).
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import type { SandboxService } from "../../sandboxes/service.js";

export function networkRoutes(router: Router, sandboxes: SandboxService): void {
  router.route(contract("PATCH", "/sandboxes/:id"), async ({ req, user, params }) => sandboxes.setNetwork(user, params.id, await readJson(req)));
}
