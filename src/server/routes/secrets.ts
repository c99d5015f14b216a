// POST/GET/DELETE /secrets. Nothing here ever returns a value or ciphertext.
import type { Router } from "../http.js";
import { readJson } from "../http.js";
import type { SecretService } from "../../secrets/service.js";
import { Reply, RawJson } from "../reply.js";

export function secretRoutes(router: Router, secrets: SecretService): void {
  router.add("POST", "/secrets", async ({ req, user }) => {
    const body = await readJson(req);
    const { secret, created } = await secrets.set(user, body.name, body.value);
    return new Reply(created ? 201 : 200, secret);
  });
  router.add("GET", "/secrets", ({ user }) => new RawJson(secrets.listJson(user)));
  router.add("DELETE", "/secrets/:name", ({ user, params }) => {
    secrets.delete(user, params.name);
    return new Reply(204);
  });
}
