// Paths inside an untrusted root tree (an imported tarball), resolved the way
// a chroot would: symlinks are followed with the tree as `/`, and `..` stops
// at the root. Every host path these return lies under the root, so writing
// there can never reach outside it, whatever links the tree holds.
import { lstat, mkdir, readlink, rm, writeFile, chmod, lchown, copyFile, constants } from "node:fs/promises";
import { join } from "node:path";

const MAX_LINKS = 40;

/**
 * The host path of `rel` (absolute, inside root) with every symlink of the
 * tree resolved inside it. The last component is resolved too unless
 * `followLast` is false. Missing components are returned as they are.
 */
export async function resolveInRoot(root: string, rel: string, followLast = true): Promise<string> {
  let todo = rel.split("/").filter((p) => p && p !== ".");
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === "..") {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    const st = await lstat(host).catch(() => null);
    if (st?.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw new Error(`too many symlinks resolving ${rel} in the image`);
      const target = await readlink(host);
      if (target.startsWith("/")) done.length = 0;
      todo = [...target.split("/").filter((p) => p && p !== "."), ...todo];
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

/** mkdir -p of `rel` inside root (through the tree's links, never out of it); returns its host path. */
export async function mkdirInRoot(root: string, rel: string, mode = 0o755): Promise<string> {
  const parts = rel.split("/").filter(Boolean);
  let cur = "/";
  for (const p of parts) {
    cur = cur === "/" ? `/${p}` : `${cur}/${p}`;
    const host = await resolveInRoot(root, cur);
    const st = await lstat(host).catch(() => null);
    if (!st) await mkdir(host, { mode });
    else if (!st.isDirectory()) {
      await rm(host, { force: true }); // a file where bhatti needs a directory
      await mkdir(host, { mode });
    }
  }
  return resolveInRoot(root, rel);
}

/** The host path a file `rel` can be created at: its parent resolved and made, and whatever the tree has there (a link, a file) removed. */
async function freshFile(root: string, rel: string): Promise<string> {
  const i = rel.lastIndexOf("/");
  const dir = await mkdirInRoot(root, rel.slice(0, i) || "/");
  const host = join(dir, rel.slice(i + 1));
  const st = await lstat(host).catch(() => null);
  if (st?.isDirectory()) await rm(host, { recursive: true, force: true });
  else if (st) await rm(host, { force: true });
  return host;
}

export async function writeInRoot(root: string, rel: string, data: string | Buffer, mode = 0o644, owner: [number, number] = [0, 0]): Promise<string> {
  const host = await freshFile(root, rel);
  await writeFile(host, data, { mode, flag: "wx" });
  await chmod(host, mode);
  await lchown(host, owner[0], owner[1]);
  return host;
}

export async function copyInRoot(root: string, rel: string, hostSource: string, mode: number): Promise<string> {
  const host = await freshFile(root, rel);
  await copyFile(hostSource, host, constants.COPYFILE_EXCL);
  await chmod(host, mode);
  await lchown(host, 0, 0);
  return host;
}
