// The caller's account (GET /me) and audit trail (GET /events).
import { Type, type Static } from "@sinclair/typebox";
import { Timestamp } from "./common.js";


export const Me = Type.Object({
  name: Type.String(),
  created_at: Timestamp,
  quotas: Type.Object({
    max_sandboxes: Type.Integer(), max_cpus: Type.Integer(), max_memory_mb: Type.Integer(),
    max_disk_mb: Type.Integer({ description: "the writable disk of all live sandboxes together, MiB" }),
    max_egress: Type.Union([Type.Literal("public"), Type.Literal("deny"), Type.Literal("none")], { description: "the most egress its sandboxes may have: public > deny > none" }),
  }, { additionalProperties: false }),
  usage: Type.Object({
    sandboxes: Type.Integer(), cpus: Type.Integer(), memory_mb: Type.Integer(), disk_mb: Type.Integer(),
    secrets: Type.Integer(), templates: Type.Integer(),
  }, { additionalProperties: false, description: "live sandboxes (not dead or lost) and their sums; secret and template counts" }),
}, { $id: "Me", additionalProperties: false });
export type Me = Static<typeof Me>;

export const Event = Type.Object({
  id: Type.Integer({ description: "increasing; the cursor" }),
  at: Timestamp,
  actor: Type.String({ description: "who did it: the user, or \"daemon\"" }),
  action: Type.String({ description: "the event type, e.g. secret.set, sandbox.created, net.denied" }),
  object: Type.Union([Type.String(), Type.Null()], { description: "what it was done to (a secret, sandbox... name)" }),
  user: Type.Union([Type.String(), Type.Null()]),
  result: Type.String({ description: "ok | error | denied" }),
  detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: "names and numbers, never a secret value" }),
}, { $id: "Event", additionalProperties: false });
export type Event = Static<typeof Event>;

export const EventPage = Type.Object({
  events: Type.Array(Event),
  next_cursor: Type.Union([Type.Integer(), Type.Null()], { description: "pass as ?cursor= for the next page; null: no event yet" }),
}, { $id: "EventPage", additionalProperties: false });
export type EventPage = Static<typeof EventPage>;
