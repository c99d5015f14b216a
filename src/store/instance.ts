// Which daemon instance this state.db belongs to. A daemon acts on host
// resources (processes, cgroups, mounts, loop devices) only when it can prove
// they are its own; the instance id is the root of that proof.
//
// The id lives in state.db (meta instance_id) next to the real path of the
// data dir it was made for (meta instance_data_dir). A copy of state.db in
// another data dir (a backup started as a second daemon, a restore on another
// path) sees a different path: it becomes a new instance, and the sandbox rows
// it inherited describe sandboxes that belong to the original daemon. They are
// marked `lost` and nothing of them is touched.
import { randomBytes } from "node:crypto";
import { type DB, getMeta, setMeta } from "./db.js";
import { recordEvent } from "./events.js";

export const META_INSTANCE = "instance_id";
export const META_INSTANCE_DIR = "instance_data_dir";

export interface InstanceClaim {
  id: string;
  /** Set when this state.db was made for another data dir: the instance it came from. */
  inheritedFrom: { id: string; dataDir: string } | null;
  /** Sandbox rows marked lost because they belong to that other instance. */
  lost: { id: string; name: string }[];
}

/** dataDir: the real path of the data dir this daemon runs on. */
export function claimInstance(db: DB, dataDir: string): InstanceClaim {
  return db.transaction((): InstanceClaim => {
    const id = getMeta(db, META_INSTANCE);
    const dir = getMeta(db, META_INSTANCE_DIR);
    if (id && dir === dataDir) return { id, inheritedFrom: null, lost: [] };
    const fresh = randomBytes(6).toString("hex");
    setMeta(db, META_INSTANCE, fresh);
    setMeta(db, META_INSTANCE_DIR, dataDir);
    if (!id || !dir) {
      // A new data dir, or one from before instance ids: its rows are this daemon's own.
      recordEvent(db, "daemon.instance", null, fresh, { data_dir: dataDir });
      return { id: fresh, inheritedFrom: null, lost: [] };
    }
    const lost = db.prepare("SELECT id, name FROM sandboxes WHERE status <> 'lost'").all() as { id: string; name: string }[];
    db.prepare("UPDATE sandboxes SET status = 'lost' WHERE status <> 'lost'").run();
    recordEvent(db, "daemon.instance", null, fresh, { data_dir: dataDir, copied_from: { instance: id, data_dir: dir }, sandboxes_lost: lost.length });
    for (const r of lost) recordEvent(db, "sandbox.lost", null, r.name, { id: r.id, instance: id });
    return { id: fresh, inheritedFrom: { id, dataDir: dir }, lost };
  }).immediate();
}
