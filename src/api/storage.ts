// Volumes and snapshots, and what else a sandbox answers about itself (ports, archives).
import { Type, type Static } from "@sinclair/typebox";
import { Timestamp } from "./common.js";

export const Volume = Type.Object({
  name: Type.String(),
  size_mb: Type.Integer(),
  attached_to: Type.Union([Type.String(), Type.Null()], { description: "the name of the sandbox it is attached to" }),
  created_at: Timestamp,
}, { $id: "Volume", additionalProperties: false });
export type Volume = Static<typeof Volume>;
export const VolumeList = Type.Array(Volume, { $id: "VolumeList" });

export const Snapshot = Type.Object({
  name: Type.String(),
  sandbox: Type.String({ description: "the sandbox it was taken of" }),
  engine: Type.String(), image: Type.String(), cpus: Type.Integer(), memory_mb: Type.Integer(),
  created_at: Timestamp,
}, { $id: "Snapshot", additionalProperties: false });
export type Snapshot = Static<typeof Snapshot>;
export const SnapshotList = Type.Array(Snapshot, { $id: "SnapshotList" });

export const ListeningPort = Type.Object({
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  address: Type.String({ description: "the address it listens on (0.0.0.0, ::, 127.0.0.1...)" }),
  family: Type.Union([Type.Literal(4), Type.Literal(6)]),
}, { additionalProperties: false });
export const PortList = Type.Array(ListeningPort, { $id: "PortList" });

export const ArchiveWritten = Type.Object({
  path: Type.String({ description: "the directory it was extracted under" }),
  size: Type.Integer({ description: "bytes of tar received" }),
}, { $id: "ArchiveWritten", additionalProperties: false });
