// QEMU command lines for the vm engine. Pure functions: everything here ends
// up in argv, which any local user can read in /proc, so the inputs are paths,
// ids and sizes only — never a ConfigDrive value.
import { readFileSync } from "node:fs";
import { GUEST } from "../../protocol/agent.js";

export const QEMU_BIN = "qemu-system-x86_64";
export type Accel = "kvm" | "tcg";

export interface QemuSpec {
  id: string; // sandbox id; also lets reattach recognise the process by its cmdline
  accel: Accel;
  kernel: string;
  initramfs: string;
  rootfs: string; // rootfs.ext4, attached read-only (/dev/vda)
  configDrive?: string; // config.ext4, attached read-only (/dev/vdb)
  agentSocket?: string; // unix socket QEMU listens on for the virtio-serial agent port
  qmpSocket?: string; // unix socket QEMU listens on for QMP (pause/resume)
  volumes?: { file: string; serial: string; ro: boolean }[]; // extra virtio-blk disks (issue 14)
  net?: QemuNet; // netvm (issue 10): a virtio-net NIC on the daemon's tap
  consoleLog: string; // guest serial console (kernel messages, init errors)
  cpus: number;
  memoryMb: number;
  diskMb?: number; // size limit of the guest's writable layer (a tmpfs in guest memory), MiB
  probe?: boolean; // boot to the initramfs marker and power off
}

/** netvm (issue 10): the tap (made by the daemon, src/net/tap.ts) and the guest NIC's MAC. */
export interface QemuNet { ifname: string; mac: string }

/** Host TSC frequency in kHz (TCG guests read the host TSC), or null if unknown. */
export function hostTscKhz(): number | null {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m ? Math.round(parseFloat(m[1]) * 1000) : null;
  } catch {
    return null;
  }
}

/** Kernel command line flag of the accelerator probe: the initramfs prints its marker and powers off. */
export const PROBE_FLAG = "bhatti.probe";

/** Kernel command line. Only flags; tuned for boot time (see the vm engine notes in the report). */
export function kernelCmdline(spec: Pick<QemuSpec, "accel" | "probe" | "diskMb">): string {
  const args = [
    "console=ttyS0",
    "quiet",
    "panic=-1", // reboot at once on panic; with -no-reboot QEMU then exits
    "root=/dev/vda",
    "8250.nr_uarts=1",
    "cryptomgr.notests", // skips the crypto self-tests: ~250 ms under TCG
    "mitigations=off", // the guest is the isolation boundary's inside; the host is protected by QEMU
    "pci=off", // microvm has no PCI
  ];
  if (spec.accel === "tcg") {
    // TCG's TSC is the host's. Without this the early TSC calibration can spin
    // for tens of seconds on a busy host (measured: >30 s vs 1.6 s).
    args.push(`tsc_early_khz=${hostTscKhz() ?? 2_000_000}`);
  }
  if (spec.probe) args.push(PROBE_FLAG);
  if (spec.diskMb) args.push(`bhatti.disk=${Math.floor(spec.diskMb)}`);
  return args.join(" ");
}

export function qemuArgs(spec: QemuSpec): string[] {
  const args = [
    "-name", `bhatti-${spec.id},process=bhatti-vm-${spec.id}`,
    "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on,pit=on,pic=off,dump-guest-core=off",
    "-accel", spec.accel,
    "-cpu", spec.accel === "kvm" ? "host" : "max",
    "-smp", String(spec.cpus),
    "-m", `${spec.memoryMb}M`,
    "-nodefaults", "-no-user-config", "-nographic", "-display", "none",
    "-no-reboot",
    "-kernel", spec.kernel,
    "-initrd", spec.initramfs,
    "-append", kernelCmdline(spec),
    "-chardev", `file,id=con,path=${spec.consoleLog}`,
    "-serial", "chardev:con",
    "-drive", `id=root,file=${spec.rootfs},format=raw,if=none,readonly=on`,
    "-device", "virtio-blk-device,drive=root",
  ];
  if (spec.configDrive) {
    args.push(
      "-drive", `id=config,file=${spec.configDrive},format=raw,if=none,readonly=on`,
      "-device", "virtio-blk-device,drive=config",
    );
  }
  if (spec.agentSocket) {
    args.push(
      "-device", "virtio-serial-device,max_ports=2",
      "-chardev", `socket,id=agent,path=${spec.agentSocket},server=on,wait=off`,
      "-device", `virtserialport,chardev=agent,name=${GUEST.virtioPortName}`,
    );
  }
  for (const [i, v] of (spec.volumes ?? []).entries()) {
    args.push(
      "-drive", `id=vol${i},file=${v.file},format=raw,if=none${v.ro ? ",readonly=on" : ""}`,
      "-device", `virtio-blk-device,drive=vol${i},serial=${v.serial}`,
    );
  }
  if (spec.net) {
    args.push(
      "-netdev", `tap,id=net0,ifname=${spec.net.ifname},script=no,downscript=no`,
      "-device", `virtio-net-device,netdev=net0,mac=${spec.net.mac}`,
    );
  }
  if (spec.qmpSocket) args.push("-qmp", `unix:${spec.qmpSocket},server=on,wait=off`);
  return args;
}
