// The audit trail. Events carry who, what and when — never a secret value.
import type { DB } from "./db.js";

export type EventType =
  | "secret.set" | "secret.deleted"
  | "user.created" | "user.deleted" | "user.key_rotated"
  | "key.rotated"
  | "sandbox.created" | "sandbox.destroyed" | "sandbox.dead"
  | "sandbox.unreachable" | "sandbox.reattached" | "sandbox.create_rolled_back" | "sandbox.lost" | "daemon.instance"
  | "template.created" | "template.deleted"
  // networking (issue 10): denials, never payloads
  | "net.denied" | "dns.denied" | "dns.rebinding" | "net.policy_changed" | "net.events_suppressed";

export function recordEvent(db: DB, type: EventType, userName: string | null, subject: string | null, detail?: Record<string, unknown>): void {
  db.prepare("INSERT INTO events (at, type, user_name, subject, detail) VALUES (?, ?, ?, ?, ?)")
    .run(new Date().toISOString(), type, userName, subject, detail ? JSON.stringify(detail) : null);
}
