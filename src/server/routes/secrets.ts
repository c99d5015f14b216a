// POST/GET/DELETE /secrets. Nothing here ever returns a value or ciphertext.
import type { Router } from "../http.js";
import type { SecretService } from "../../secrets/service.js";
import { Reply, RawJson } from "../reply.js";
import { ROUTES } from "../../api/routes.js";
import type { SetSecretRequest } from "../../api/secrets.js";
import { bindingChange } from "../../broker/binding.js";

export function secretRoutes(router: Router, secrets: SecretService): void {
  router.route(ROUTES.setSecret, async (ctx) => {
    const body = ctx.body as SetSecretRequest, user = ctx.user;
    const { secret, created } = await secrets.set(user, body.name, body.value, bindingChange(body));
    return new Reply(created ? 201 : 200, secret);
  });
  router.route(ROUTES.listSecrets, ({ user }) => new RawJson(secrets.listJson(user)));
  router.route(ROUTES.deleteSecret, ({ user, params }) => {
    secrets.delete(user, params.name);
    return new Reply(204);
  });
}
