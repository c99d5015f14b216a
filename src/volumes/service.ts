// Volumes (issue 14): per-user persistent ext4 images that outlive sandboxes.
// One holder at a time: a volume is claimed by one sandbox (whatever its
// state, stopped included) from its create to its delete; delete of a held
// volume is refused. Another user's volume is simply not found.
import { randomBytes } from "node:crypto";
import type { DB } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { UserError, conflict, notFound } from "../util/errors.js";
import type { User } from "../users/service.js";
import { makeVolumeImage, removeVolumeImage, volumeFile } from "./image.js";
import { MAX_VOLUMES_PER_USER, type VolumeMount, validateSize, validateVolumeName } from "./validate.js";

export interface VolumeView { name: string; size_mb: number; attached_to: string | null; created_at: string }
/** A claimed volume as an engine mounts it. */
export interface AttachedVolume { id: string; name: string; file: string; path: string; ro: boolean }

interface Row { id: string; user_id: number; name: string; size_mb: number; attached_to: string | null; created_at: string }

export class VolumeService {
  constructor(private readonly db: DB, private readonly dataDir: string) {}

  private view(r: Row): VolumeView {
    const holder = r.attached_to ? (this.db.prepare("SELECT name FROM sandboxes WHERE id = ?").get(r.attached_to) as { name: string } | undefined) : undefined;
    return { name: r.name, size_mb: r.size_mb, attached_to: holder?.name ?? null, created_at: r.created_at };
  }

  async create(user: User, body: Record<string, unknown>): Promise<VolumeView> {
    const name = validateVolumeName(body.name);
    const size = validateSize(body.size_mb);
    const id = "vol" + randomBytes(8).toString("hex");
    this.db.transaction(() => {
      const n = (this.db.prepare("SELECT COUNT(*) AS n FROM volumes WHERE user_id = ?").get(user.id) as { n: number }).n;
      if (n >= MAX_VOLUMES_PER_USER) throw new UserError(403, `quota exceeded: at most ${MAX_VOLUMES_PER_USER} volumes`);
      if (this.db.prepare("SELECT 1 FROM volumes WHERE user_id = ? AND name = ?").get(user.id, name)) throw conflict(`volume ${JSON.stringify(name)} already exists`);
      // Held (attached_to = the id itself) until its image exists: no sandbox can claim a half-made volume.
      this.db.prepare("INSERT INTO volumes (id, user_id, name, size_mb, attached_to, created_at) VALUES (?, ?, ?, ?, ?, ?)").run(id, user.id, name, size, id, new Date().toISOString());
    }).immediate();
    try {
      await makeVolumeImage(this.dataDir, id, size);
    } catch (e) {
      this.db.prepare("DELETE FROM volumes WHERE id = ?").run(id);
      throw new UserError(500, `making volume ${JSON.stringify(name)} failed: ${(e as Error).message.split("\n")[0]}`);
    }
    if (this.db.prepare("UPDATE volumes SET attached_to = NULL WHERE id = ?").run(id).changes !== 1) {
      // Its row went meanwhile (its owner was deleted with --force): the image goes too.
      removeVolumeImage(this.dataDir, id);
      throw notFound(`volume ${JSON.stringify(name)} not found`);
    }
    recordEvent(this.db, "volume.created", user.name, name, { id, size_mb: size });
    return this.view(this.db.prepare("SELECT * FROM volumes WHERE id = ?").get(id) as Row);
  }

  list(user: User): VolumeView[] {
    return (this.db.prepare("SELECT * FROM volumes WHERE user_id = ? ORDER BY name").all(user.id) as Row[]).map((r) => this.view(r));
  }

  delete(user: User, name: string): void {
    const r = this.db.prepare("SELECT * FROM volumes WHERE user_id = ? AND name = ?").get(user.id, name) as Row | undefined;
    if (!r) throw notFound(`volume ${JSON.stringify(name)} not found`);
    if (r.attached_to) throw conflict(`volume ${JSON.stringify(name)} is attached to sandbox ${JSON.stringify(this.view(r).attached_to ?? "(being made)")}; destroy that sandbox first`);
    if (this.db.prepare("DELETE FROM volumes WHERE id = ? AND attached_to IS NULL").run(r.id).changes !== 1) throw conflict(`volume ${JSON.stringify(name)} was attached meanwhile`);
    removeVolumeImage(this.dataDir, r.id);
    recordEvent(this.db, "volume.deleted", user.name, name, { id: r.id });
  }

  /**
   * Claims the user's volumes for sandbox `sandboxId` on `engine`. Call inside the create's transaction.
   * A volume a vm guest has had writable holds blocks a guest kernel wrote: the
   * ns engine would mount it with the host's kernel, so it is refused there.
   */
  claim(user: User, mounts: VolumeMount[], sandboxId: string, engine: string): AttachedVolume[] {
    return mounts.map((m) => {
      const r = this.db.prepare("SELECT * FROM volumes WHERE user_id = ? AND name = ?").get(user.id, m.name) as (Row & { vm_written: number }) | undefined;
      if (!r) throw new UserError(400, `volume ${JSON.stringify(m.name)} not found`);
      if (r.attached_to) throw conflict(`volume ${JSON.stringify(m.name)} is in use by sandbox ${JSON.stringify(this.view(r).attached_to ?? "(being made)")} (one sandbox at a time)`);
      if (engine === "ns" && r.vm_written) throw new UserError(400, `volume ${JSON.stringify(m.name)} was writable in a vm sandbox: the host does not mount a filesystem a guest kernel wrote, so it can be attached to vm sandboxes only`);
      this.db.prepare("UPDATE volumes SET attached_to = ?, vm_written = vm_written OR ? WHERE id = ?").run(sandboxId, engine === "vm" && !m.ro ? 1 : 0, r.id);
      return { id: r.id, name: r.name, file: volumeFile(this.dataDir, r.id), path: m.path, ro: m.ro };
    });
  }

  /** Frees every volume sandbox `sandboxId` holds (its row is gone or going). */
  release(sandboxId: string): void {
    this.db.prepare("UPDATE volumes SET attached_to = NULL WHERE attached_to = ?").run(sandboxId);
  }
}
