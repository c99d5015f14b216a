// Volumes (issue 14): POST /volumes {name, size_mb}, GET /volumes, DELETE /volumes/:name.
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import { Reply } from "../reply.js";
import type { VolumeService } from "../../volumes/service.js";

export function volumeRoutes(router: Router, volumes: VolumeService): void {
  router.route(contract("POST", "/volumes"), async ({ req, user }) => new Reply(201, await volumes.create(user, await readJson(req))));
  router.route(contract("GET", "/volumes"), ({ user }) => volumes.list(user));
  router.route(contract("DELETE", "/volumes/:name"), ({ user, params }) => {
    volumes.delete(user, params.name);
    return new Reply(204);
  });
}
