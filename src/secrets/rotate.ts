// `bhatti key rotate`: move every secret (and every sandbox's AUTH token) to a new age identity.
//
// Order of durable steps, chosen so that a kill at any instant leaves a data
// dir whose age.key decrypts every blob in state.db, and whose blobs are all
// under one key:
//   1. age.key := [new, old]   (atomic rename; either identity decrypts)
//   2. one SQLite transaction: every blob re-encrypted to new, meta recipient = new
//   3. age.key := [new]        (atomic rename)
// A run that died between 1 and 3 is settled by the next `serve` or `key rotate`
// (openKeyring keeps the identity the database says it is on).
import type { DB } from "../store/db.js";
import { purgeFreedPages, setMeta } from "../store/db.js";
import { recordEvent } from "../store/events.js";
import { Keyring, generateIdentity, writeKeyFile } from "./keyring.js";
import { openKeyring, META_RECIPIENT } from "./open.js";

/** Fault injection for crash-safety tests: BHATTI_FAULT=rotate:<point> kills this process there. */
function faultPoint(point: string): void {
  if (process.env.BHATTI_FAULT === `rotate:${point}`) process.kill(process.pid, "SIGKILL");
}

export async function rotateKey(keyPath: string, db: DB): Promise<{ count: number; tokens: number; oldRecipient: string; newRecipient: string }> {
  const old = await openKeyring(keyPath, db); // also settles a rotation that died earlier
  const identity = await generateIdentity();
  const next = await Keyring.fromIdentity(identity);

  await writeKeyFile(keyPath, [identity, old.identity], "key rotation in progress: the first identity is new, the second old");
  faultPoint("after-both-keys");

  const rows = db.prepare("SELECT user_id, name FROM secrets").all() as { user_id: number; name: string }[];
  const read = db.prepare("SELECT value_encrypted FROM secrets WHERE user_id = ? AND name = ?");
  const write = db.prepare("UPDATE secrets SET value_encrypted = ? WHERE user_id = ? AND name = ?");
  // Everything else under the key: each sandbox's lohar AUTH token (a running
  // sandbox is reattached with it after the next start).
  const sandboxes = db.prepare("SELECT id FROM sandboxes WHERE token_encrypted IS NOT NULL").all() as { id: string }[];
  // And the received values of redacting sandboxes (migration 6; sandboxes/service.ts).
  const redacting = db.prepare("SELECT id FROM sandboxes WHERE redact_encrypted IS NOT NULL").all() as { id: string }[];
  const readRedact = db.prepare("SELECT redact_encrypted FROM sandboxes WHERE id = ?");
  const writeRedact = db.prepare("UPDATE sandboxes SET redact_encrypted = ? WHERE id = ?");
  // And the keys of sandboxes' and snapshots' broker CAs (issue 11, migration 10).
  const caKeys = ["sandbox_brokers", "snapshot_brokers"].flatMap((table) => {
    const key = table === "sandbox_brokers" ? "sandbox_id" : "snapshot_id";
    return (db.prepare(`SELECT ${key} AS id, ca_key_enc FROM ${table}`).all() as { id: string; ca_key_enc: Buffer }[])
      .map((r) => ({ blob: r.ca_key_enc, write: db.prepare(`UPDATE ${table} SET ca_key_enc = ? WHERE ${key} = ?`), id: r.id }));
  });
  const readToken = db.prepare("SELECT token_encrypted FROM sandboxes WHERE id = ?");
  const writeToken = db.prepare("UPDATE sandboxes SET token_encrypted = ? WHERE id = ?");
  // Manual BEGIN/COMMIT so the transaction can span the async age calls; this
  // process is the only user of this connection, and no daemon runs meanwhile.
  db.exec("BEGIN IMMEDIATE");
  try {
    let done = 0;
    for (const r of rows) {
      const blob = (read.get(r.user_id, r.name) as { value_encrypted: Buffer }).value_encrypted;
      write.run(await next.encrypt(await old.decrypt(blob)), r.user_id, r.name);
      if (++done === Math.ceil(rows.length / 2)) faultPoint("mid-transaction");
    }
    for (const r of sandboxes) {
      const blob = (readToken.get(r.id) as { token_encrypted: Buffer }).token_encrypted;
      writeToken.run(await next.encrypt(await old.decrypt(blob)), r.id);
    }
    for (const r of redacting) {
      const blob = (readRedact.get(r.id) as { redact_encrypted: Buffer }).redact_encrypted;
      writeRedact.run(await next.encrypt(await old.decrypt(blob)), r.id);
    }
    for (const c of caKeys) c.write.run(await next.encrypt(await old.decrypt(c.blob)), c.id);
    setMeta(db, META_RECIPIENT, next.recipient);
    recordEvent(db, "key.rotated", null, null, { secrets: rows.length, sandbox_tokens: sandboxes.length, broker_ca_keys: caKeys.length, recipient: next.recipient }, { actor: "operator" });
    db.exec("COMMIT");
    purgeFreedPages(db); // the old ciphertexts' page images leave the WAL
  } catch (e) {
    db.exec("ROLLBACK");
    await writeKeyFile(keyPath, [old.identity]);
    throw e;
  }
  faultPoint("after-commit");

  await writeKeyFile(keyPath, [identity]);
  faultPoint("after-new-key");
  return { count: rows.length, tokens: sandboxes.length, oldRecipient: old.recipient, newRecipient: next.recipient };
}
