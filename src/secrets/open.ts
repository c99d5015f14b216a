// Loading the daemon's identity at start-up, and refusing to run when doing so
// would lose secrets.
import type { DB } from "../store/db.js";
import { getMeta, setMeta } from "../store/db.js";
import { Keyring, assertKeyFileMode, generateIdentity, readKeyFile, writeKeyFile } from "./keyring.js";
import * as age from "age-encryption";

export class KeyLossError extends Error {}

const META_RECIPIENT = "age_recipient";

function secretCount(db: DB): number {
  return (db.prepare("SELECT COUNT(*) AS n FROM secrets").get() as { n: number }).n;
}

/** Sandbox AUTH tokens are age ciphertext under the same key (and so are snapshots' broker CA keys, issue 11: counted with them). */
function tokenCount(db: DB): number {
  return (db.prepare("SELECT (SELECT COUNT(*) FROM sandboxes WHERE token_encrypted IS NOT NULL) + (SELECT COUNT(*) FROM snapshot_brokers) AS n").get() as { n: number }).n;
}

function restoreHint(keyPath: string, n: number): string {
  return `${keyPath} is needed: state.db holds ${n} secret${n === 1 ? "" : "s"} that cannot be decrypted without it. ` +
    `Restore age.key from the backup taken together with state.db. ` +
    `bhatti will not generate a replacement key, because that would make every stored secret unrecoverable.`;
}

/**
 * Returns the keyring for this data dir. Generates age.key only when the store
 * holds no secrets and there is no key file; every other anomaly is an error
 * whose message names the file and what to do.
 */
export async function openKeyring(keyPath: string, db: DB): Promise<Keyring> {
  assertKeyFileMode(keyPath);
  const state = readKeyFile(keyPath);
  const n = secretCount(db);
  const dbRecipient = getMeta(db, META_RECIPIENT);
  const tokens = tokenCount(db);
  if (!dbRecipient && (n > 0 || tokens > 0)) {
    // The row that says which key the ciphertext is under is gone: bhatti will
    // not guess (adopting whatever age.key holds would bless a wrong key).
    throw new KeyLossError(`${keyPath}: state.db holds ${n} secret${n === 1 ? "" : "s"} and ${tokens} sandbox token${tokens === 1 ? "" : "s"} encrypted with an age key, ` +
      `but its record of which key (meta row ${META_RECIPIENT}) is missing, so bhatti cannot prove age.key is that key and refuses to start. ` +
      `Restore state.db and age.key from a backup taken together, or, after checking that \`age -d -i ${keyPath}\` decrypts a stored blob, ` +
      `insert the row: INSERT INTO meta (key, value) VALUES ('${META_RECIPIENT}', '<public key of age.key>').`);
  }

  if (state.kind === "missing" || state.kind === "empty") {
    if (n > 0) throw new KeyLossError(`${keyPath} is ${state.kind}. ${restoreHint(keyPath, n)}`);
    const identity = await generateIdentity();
    await writeKeyFile(keyPath, [identity]);
    const kr = await Keyring.fromIdentity(identity);
    setMeta(db, META_RECIPIENT, kr.recipient);
    return kr;
  }
  if (state.kind === "invalid") {
    const tail = n > 0 ? restoreHint(keyPath, n) : "Fix or remove the file; bhatti will not overwrite it.";
    throw new KeyLossError(`${keyPath} ${state.why}. ${tail}`);
  }

  let identity = state.identities[0];
  if (state.identities.length > 1 || dbRecipient) {
    // A rotation may have died half way: keep the identity the database is on.
    const match = await findIdentityFor(state.identities, dbRecipient);
    if (!match) {
      if (n > 0 || state.identities.length > 1) {
        throw new KeyLossError(`${keyPath} does not hold the key the stored secrets were encrypted with (${dbRecipient}). ${restoreHint(keyPath, n)}`);
      }
    } else {
      identity = match;
    }
    if (state.identities.length > 1) await writeKeyFile(keyPath, [identity]);
  }
  let kr: Keyring;
  try {
    kr = await Keyring.fromIdentity(identity);
  } catch {
    throw new KeyLossError(`${keyPath} does not contain a valid AGE-SECRET-KEY-1 identity (bad checksum). ${n > 0 ? restoreHint(keyPath, n) : "Fix or remove the file; bhatti will not overwrite it."}`);
  }
  if (dbRecipient !== kr.recipient) setMeta(db, META_RECIPIENT, kr.recipient);
  return kr;
}

async function findIdentityFor(identities: string[], recipient: string | undefined): Promise<string | undefined> {
  if (!recipient) return identities.length === 1 ? identities[0] : undefined;
  for (const id of identities) {
    try {
      if ((await age.identityToRecipient(id)) === recipient) return id;
    } catch { /* a corrupt line matches nothing */ }
  }
  return undefined;
}

export { META_RECIPIENT };
