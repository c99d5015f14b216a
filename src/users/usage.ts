// What a user has in use, counted as the quota check counts it (live sandboxes).
import type { DB } from "../store/db.js";

export interface Usage { sandboxes: number; cpus: number; memory_mb: number; disk_mb: number; secrets: number; templates: number }

export function usageOf(db: DB, userId: number): Usage {
  const live = db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(cpus), 0) AS c, COALESCE(SUM(memory_mb), 0) AS m, COALESCE(SUM(disk_mb), 0) AS d FROM sandboxes WHERE user_id = ? AND status NOT IN ('dead', 'lost')")
    .get(userId) as { n: number; c: number; m: number; d: number };
  const secrets = (db.prepare("SELECT COUNT(*) AS n FROM secrets WHERE user_id = ?").get(userId) as { n: number }).n;
  const templates = (db.prepare("SELECT COUNT(*) AS n FROM templates WHERE user_id = ?").get(userId) as { n: number }).n;
  return { sandboxes: live.n, cpus: live.c, memory_mb: live.m, disk_mb: live.d, secrets, templates };
}
