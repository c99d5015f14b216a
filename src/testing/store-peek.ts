// Test-only: decrypts a stored secret straight from a data dir, to check what
// the CLI stored (the API deliberately has no way to read a value back).
import Database from "better-sqlite3";
import { join } from "node:path";
import { readKeyFile, Keyring } from "../secrets/keyring.js";

export async function readSecretForTest(dataDir: string, user: string, name: string): Promise<string> {
  const key = readKeyFile(join(dataDir, "age.key"));
  if (key.kind !== "ok") throw new Error("no key");
  const db = new Database(join(dataDir, "state.db"), { readonly: true });
  try {
    const row = db.prepare("SELECT s.value_encrypted AS v FROM secrets s JOIN users u ON u.id = s.user_id WHERE u.name = ? AND s.name = ?").get(user, name) as { v: Buffer };
    return (await Keyring.fromIdentity(key.identities[0])).decrypt(row.v);
  } finally { db.close(); }
}
