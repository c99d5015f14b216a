// Size limits the daemon enforces and the CLI checks before it starts an
// upload (so a too-large copy fails at once, naming the limit).
export const MAX_FILE_BYTES = 64 << 20; // PUT /sandboxes/:id/files
export const MAX_ARCHIVE_BYTES = 256 << 20; // PUT /sandboxes/:id/archive (the tar stream)
