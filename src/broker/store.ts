// The store side of the credential broker (issue 11): per-sandbox records of
// placeholders and CA (state.db tables sandbox_brokers / snapshot_brokers,
// migration 10), made when a sandbox boots, and the Broker the egress proxy
// asks (src/broker/types.ts). Values are decrypted only in value(), for the
// proxy; the create path reads a bound secret's shape, never its value.
import type { DB } from "../store/db.js";
import type { Keyring } from "../secrets/keyring.js";
import type { SecretService } from "../secrets/service.js";
import { conflict } from "../util/errors.js";
import { createSandboxCa } from "./ca.js";
import { parseShape, placeholderFor } from "./placeholder.js";
import type { Broker, BrokeredSecret, SandboxBroker, SandboxCa } from "./types.js";

/** A sandbox's brokering for one boot: the placeholders it is given and its CA certificate. */
export interface Brokering {
  /** Every placeholder of the sandbox (name -> placeholder): those asked for now, and any it already held. */
  readonly placeholders: Map<string, string>;
  readonly caCert: string;
  /** Writes the sandbox's record (synchronous: call it in the transaction that writes the sandbox's row, or after). */
  save(sandboxId: string): void;
}

/** Where a boot's record starts from: the sandbox's own (start), or a snapshot's (fork). */
export type BrokerBase = { sandbox: string } | { snapshot: string };

interface RecordRow { ca_cert: string; ca_key_enc: Buffer; placeholders: string }

const MAX_SANDBOX_CACHE = 4096;
const MAX_VALUE_CACHE = 1024;

export class BrokerStore implements Broker {
  private readonly q;
  private readonly sandboxes = new Map<string, StoredSandboxBroker>();
  private readonly values = new Map<string, { version: number; buf: Buffer }>(); // `${user}\0${name}`: decrypted, memory only
  /** Bumped on every secret set/delete (and when another process wrote state.db): bindings are read again. */
  generation = 0;
  private dataVersion = -1;

  constructor(db: DB, private readonly keyring: Keyring, secrets: SecretService) {
    this.q = {
      sandbox: db.prepare("SELECT ca_cert, ca_key_enc, placeholders FROM sandbox_brokers WHERE sandbox_id = ?"),
      snapshot: db.prepare("SELECT ca_cert, ca_key_enc, placeholders FROM snapshot_brokers WHERE snapshot_id = ?"),
      forSandbox: db.prepare("SELECT b.placeholders, s.user_id FROM sandbox_brokers b JOIN sandboxes s ON s.id = b.sandbox_id WHERE b.sandbox_id = ?"),
      save: db.prepare("INSERT OR REPLACE INTO sandbox_brokers (sandbox_id, ca_cert, ca_key_enc, placeholders) VALUES (?, ?, ?, ?)"),
      toSnapshot: db.prepare("INSERT OR REPLACE INTO snapshot_brokers (snapshot_id, ca_cert, ca_key_enc, placeholders) SELECT ?, ca_cert, ca_key_enc, placeholders FROM sandbox_brokers WHERE sandbox_id = ?"),
      shape: db.prepare("SELECT shape FROM secrets WHERE user_id = ? AND name = ? AND hosts IS NOT NULL"),
      binding: db.prepare("SELECT hosts, header, in_body FROM secrets WHERE user_id = ? AND name = ?"),
      blob: db.prepare("SELECT value_encrypted, version, hosts FROM secrets WHERE user_id = ? AND name = ?"),
      dataVersion: db.prepare("PRAGMA data_version").pluck(),
    };
    secrets.onChange((userId, name) => {
      this.generation++;
      this.dropValue(`${userId}\0${name}`);
    });
  }

  /**
   * For a boot (create, start, fork): placeholders for the bound secrets
   * `names` of the user, made from their stored shapes (never their values),
   * plus whatever the base record already holds (the sandbox's disk may hold
   * those placeholders: they keep working), and a CA: the base's, else a new
   * one. null when there is nothing to broker.
   */
  async prepare(userId: number, names: string[], base?: BrokerBase): Promise<Brokering | null> {
    const from = base ? this.record(base) : undefined;
    if (!names.length && !from) return null;
    const placeholders = new Map<string, string>(from ? Object.entries(JSON.parse(from.placeholders) as Record<string, string>) : []);
    for (const name of names) {
      if (placeholders.has(name)) continue;
      const row = this.q.shape.get(userId, name) as { shape: string | null } | undefined;
      // Unbound or deleted since it was read: the caller's view is stale.
      if (!row?.shape) throw conflict(`secret ${JSON.stringify(name)} changed while the sandbox was being made; retry`);
      placeholders.set(name, placeholderFor(parseShape(row.shape), placeholders.values()));
    }
    let ca: { certPem: string; keyEnc: Buffer };
    if (from) ca = { certPem: from.ca_cert, keyEnc: from.ca_key_enc };
    else {
      const made = await createSandboxCa();
      ca = { certPem: made.certPem, keyEnc: await this.keyring.encrypt(made.keyPem) };
    }
    const json = JSON.stringify(Object.fromEntries(placeholders));
    return {
      placeholders,
      caCert: ca.certPem,
      save: (sandboxId) => {
        this.q.save.run(sandboxId, ca.certPem, ca.keyEnc, json);
        this.sandboxes.delete(sandboxId);
      },
    };
  }

  private record(base: BrokerBase): RecordRow | undefined {
    return ("sandbox" in base ? this.q.sandbox.get(base.sandbox) : this.q.snapshot.get(base.snapshot)) as RecordRow | undefined;
  }

  /** A snapshot keeps its sandbox's record: a fork's disk holds those placeholders and trusts that CA. */
  copyToSnapshot(sandboxId: string, snapshotId: string): void {
    this.q.toSnapshot.run(snapshotId, sandboxId);
  }

  /** The sandbox's placeholders (name -> placeholder), empty if it has none. */
  placeholdersOf(sandboxId: string): Map<string, string> {
    const row = this.q.sandbox.get(sandboxId) as RecordRow | undefined;
    return new Map(row ? Object.entries(JSON.parse(row.placeholders) as Record<string, string>) : []);
  }

  // ---- Broker ----

  forSandbox(sandboxId: string): SandboxBroker | undefined {
    const row = this.q.forSandbox.get(sandboxId) as { placeholders: string; user_id: number } | undefined;
    let sb = this.sandboxes.get(sandboxId);
    if (!row) {
      if (sb) this.sandboxes.delete(sandboxId);
      return undefined;
    }
    if (!sb || sb.placeholdersJson !== row.placeholders) {
      sb = new StoredSandboxBroker(this, sandboxId, row.user_id, row.placeholders);
      this.sandboxes.delete(sandboxId);
      this.sandboxes.set(sandboxId, sb);
      if (this.sandboxes.size > MAX_SANDBOX_CACHE) this.sandboxes.delete(this.sandboxes.keys().next().value!);
    }
    return sb;
  }

  /** The generation bindings were read at; moves when a secret changed (here, or in state.db by another process). */
  currentGeneration(): number {
    const v = this.q.dataVersion.get() as number;
    if (v !== this.dataVersion) {
      this.dataVersion = v;
      this.generation++;
    }
    return this.generation;
  }

  /** Current bindings of these names of a user (a deleted or unbound one: no hosts, so it goes nowhere). */
  bindings(userId: number, placeholders: Map<string, string>): BrokeredSecret[] {
    const out: BrokeredSecret[] = [];
    for (const [name, placeholder] of placeholders) {
      const row = this.q.binding.get(userId, name) as { hosts: string | null; header: string | null; in_body: number } | undefined;
      const hosts = row?.hosts ? (JSON.parse(row.hosts) as string[]) : [];
      out.push(Object.freeze({ name, placeholder, hosts: Object.freeze(hosts) as string[], ...(row?.hosts && row.header ? { header: row.header } : {}), inBody: !!row?.hosts && row.in_body === 1 }));
    }
    return out;
  }

  /** The current value of a bound secret, or null (deleted or unbound). A fresh copy each time: the caller may wipe it. */
  async value(userId: number, name: string): Promise<Buffer | null> {
    const row = this.q.blob.get(userId, name) as { value_encrypted: Buffer; version: number; hosts: string | null } | undefined;
    const key = `${userId}\0${name}`;
    if (!row || row.hosts === null) {
      this.dropValue(key);
      return null;
    }
    const hit = this.values.get(key);
    if (hit && hit.version === row.version) return Buffer.from(hit.buf);
    const buf = Buffer.from(await this.keyring.decrypt(row.value_encrypted), "utf8");
    this.dropValue(key);
    this.values.set(key, { version: row.version, buf });
    if (this.values.size > MAX_VALUE_CACHE) this.dropValue(this.values.keys().next().value!);
    return Buffer.from(buf);
  }

  private dropValue(key: string): void {
    const hit = this.values.get(key);
    if (!hit) return;
    hit.buf.fill(0);
    this.values.delete(key);
  }

  /** The sandbox's CA with its key decrypted (memory only). */
  async ca(sandboxId: string): Promise<SandboxCa> {
    const row = this.q.sandbox.get(sandboxId) as RecordRow | undefined;
    if (!row) throw new Error(`sandbox ${sandboxId} has no broker record`);
    return { certPem: row.ca_cert, keyPem: await this.keyring.decrypt(row.ca_key_enc) };
  }
}

class StoredSandboxBroker implements SandboxBroker {
  private readonly placeholders: Map<string, string>;
  private list: BrokeredSecret[] = [];
  private listGen = -1;
  private caP?: Promise<SandboxCa>;

  constructor(private readonly store: BrokerStore, readonly sandboxId: string, private readonly userId: number, readonly placeholdersJson: string) {
    this.placeholders = new Map(Object.entries(JSON.parse(placeholdersJson) as Record<string, string>));
  }

  ca(): Promise<SandboxCa> {
    this.caP ??= this.store.ca(this.sandboxId);
    this.caP.catch(() => { this.caP = undefined; }); // a failure is retried on the next call
    return this.caP;
  }

  secrets(): BrokeredSecret[] {
    const gen = this.store.currentGeneration();
    if (gen !== this.listGen) {
      this.list = this.store.bindings(this.userId, this.placeholders);
      this.listGen = gen;
    }
    return this.list;
  }

  value(name: string): Promise<Buffer | null> {
    if (!this.placeholders.has(name)) return Promise.resolve(null);
    return this.store.value(this.userId, name);
  }
}
