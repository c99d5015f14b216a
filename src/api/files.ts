// Files inside a sandbox: read, stat (HEAD), list, write.
import { Type, type Static } from "@sinclair/typebox";

export const FilesQuery = Type.Object({
  path: Type.String({ description: "absolute path inside the sandbox, at most 4096 bytes" }),
  ls: Type.Optional(Type.Literal("true", { description: "GET: list the directory instead of reading a file" })),
  mode: Type.Optional(Type.String({ pattern: "^[0-7]{3,4}$", description: "PUT: octal permission mode, e.g. 0644" })),
});

export const FileEntry = Type.Object({
  name: Type.String(), type: Type.Union(["file", "dir", "symlink", "other"].map((t) => Type.Literal(t))), size: Type.Integer(),
  mode: Type.Integer(), uid: Type.Integer(), gid: Type.Integer(), mtime: Type.String(),
}, { $id: "FileEntry" });
export type FileEntry = Static<typeof FileEntry>;

export const FileList = Type.Array(FileEntry);

export const FileWritten = Type.Object({ path: Type.String(), size: Type.Integer() }, { $id: "FileWritten" });
export type FileWritten = Static<typeof FileWritten>;

/** Largest file a PUT accepts. */
export const MAX_FILE_BYTES = 64 << 20;
