// GET /health and GET /openapi.json. Both public: the OpenAPI document holds
// the API's shape only (no data, nothing per user), which any client needs
// before it has a key, as /health does.
import type { Router } from "../http.js";
import { ROUTES } from "../../api/routes.js";
import { openApiDocument } from "../../api/openapi.js";
import { RawJson } from "../reply.js";

export function metaRoutes(router: Router, health: () => Record<string, unknown>): void {
  router.route(ROUTES.health, () => health());
  let doc: RawJson | undefined; // built at the first request, when every route module has registered
  router.route(ROUTES.openapi, () => (doc ??= new RawJson(JSON.stringify(openApiDocument(router.table())))));
}
