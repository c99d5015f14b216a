// GET /me: the caller's name, quotas and current usage (for `bhatti whoami`).
import { contract } from "../../api/routes-more.js";
import type { Router } from "../http.js";
import type { DB } from "../../store/db.js";
import { usageOf } from "../../users/usage.js";

export function meRoutes(router: Router, db: DB): void {
  router.route(contract("GET", "/me"), ({ user }) => ({
    name: user.name,
    created_at: user.created_at,
    quotas: { max_sandboxes: user.max_sandboxes, max_cpus: user.max_cpus, max_memory_mb: user.max_memory_mb, max_disk_mb: user.max_disk_mb, max_egress: user.max_egress },
    usage: usageOf(db, user.id),
  }));
}
