// Where a vm sandbox keeps its things. All of it is on the runtime tmpfs:
// a vm sandbox's writable layer lives in guest RAM, so it has no persistent dir.
import { join } from "node:path";
import type { EngineEnv } from "../types.js";
import { sandboxRuntimeDir } from "../runtime.js";
import { canonicalImage, RECIPES } from "../../image/names.js";
import { existsSync, readdirSync } from "node:fs";

export interface VmPaths {
  sb: string; // <rt>/sb/<id>
  socket: string; // virtio-serial agent port (QEMU listens)
  console: string; // guest serial console: kernel and initramfs messages
  qemuLog: string; // QEMU's own stdout/stderr
  qmp: string; // QMP control socket (pause/resume)
  data: string; // <dataDir>/sandboxes/<id> (unused by vm; removed by destroy if present)
}

export interface ImagePaths {
  dir: string;
  kernel: string;
  initramfs: string;
  rootfs: string;
}

export function vmPaths(env: EngineEnv, id: string): VmPaths {
  if (!/^[a-z0-9]+$/.test(id)) throw new Error(`bad sandbox id ${JSON.stringify(id)}`);
  const sb = sandboxRuntimeDir(env.runtimeDir, id);
  return {
    sb,
    socket: join(sb, "agent.sock"),
    console: join(sb, "console.log"),
    qemuLog: join(sb, "qemu.log"),
    qmp: join(sb, "qmp.sock"),
    data: join(env.dataDir, "sandboxes", id),
  };
}

export function imagePaths(env: EngineEnv, image: string): ImagePaths {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/.test(image)) throw new Error(`bad image name ${JSON.stringify(image)}`);
  const dir = join(env.imagesDir, canonicalImage(image));
  return {
    dir,
    kernel: join(dir, "vmlinux"),
    initramfs: join(dir, "initramfs.cpio"),
    rootfs: join(dir, "rootfs.ext4"),
  };
}

/** The image whose kernel the accelerator probe boots: the first built of bhatti's own images, else any built one (all share the kernel). */
export function probeImageName(env: EngineEnv): string {
  let others: string[] = [];
  try {
    others = readdirSync(env.imagesDir).filter((n) => /^[a-z0-9][a-z0-9_-]*$/.test(n)).sort();
  } catch {
    // no images dir yet
  }
  return [...RECIPES, ...others].find((n) => existsSync(imagePaths(env, n).kernel)) ?? RECIPES[0];
}
