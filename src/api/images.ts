// Images (read-only over the API).
import { Type, type Static } from "@sinclair/typebox";
import { EngineName, Timestamp } from "./common.js";
import { NAME_RE } from "../image/names.js";

export const ImageSummary = Type.Object({
  name: Type.String(), aliases: Type.Array(Type.String()), default: Type.Boolean(), built_at: Timestamp, build_ms: Type.Number(),
  inputs_hash: Type.String(), engines: Type.Array(EngineName), size_bytes: Type.Integer(),
  rootfs: Type.Object({ files: Type.Integer(), bytes: Type.Integer() }), packages: Type.Integer(),
}, { $id: "ImageSummary" });
export type ImageSummary = Static<typeof ImageSummary>;

export const ImageDetail = Type.Composite([ImageSummary, Type.Object({
  inputs: Type.Record(Type.String(), Type.Unknown()),
  files: Type.Array(Type.Object({ path: Type.String(), size: Type.Integer() })),
  package_list: Type.Record(Type.String(), Type.String()),
})], { $id: "ImageDetail" });
export type ImageDetail = Static<typeof ImageDetail>;

export const ImageList = Type.Object({ default: Type.String(), images: Type.Array(ImageSummary) }, { $id: "ImageList" });
export type ImageList = Static<typeof ImageList>;

export const ImageNameParam = Type.String({ pattern: NAME_RE.source, errorMessage: `image name must match ${NAME_RE.source}` });

export const Health = Type.Object({
  status: Type.Literal("ok"), version: Type.String(), engine: EngineName,
  engines: Type.Record(Type.String(), Type.Object({ available: Type.Boolean(), accel: Type.Optional(Type.String()), reason: Type.Optional(Type.String()) })),
  accel: Type.Optional(Type.String()),
}, { $id: "Health" });
export type Health = Static<typeof Health>;
