// QEMU argv and kernel command line: the shape the engine relies on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { kernelCmdline, qemuArgs } from "./qemu.js";

const spec = {
  id: "abc123", accel: "tcg" as const, kernel: "/i/vmlinux", initramfs: "/i/initramfs.cpio", rootfs: "/i/rootfs.ext4",
  configDrive: "/run/bhatti/x/sb/abc123/config.ext4", agentSocket: "/run/bhatti/x/sb/abc123/agent.sock",
  consoleLog: "/run/bhatti/x/sb/abc123/console.log", cpus: 2, memoryMb: 384,
};

function after(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
}

test("qemu argv: microvm, read-only disks in order, agent port, sizes", () => {
  const a = qemuArgs(spec);
  assert.match(after(a, "-M")[0], /^microvm,/);
  assert.deepEqual(after(a, "-accel"), ["tcg"]);
  assert.deepEqual(after(a, "-smp"), ["2"]);
  assert.deepEqual(after(a, "-m"), ["384M"]);
  assert.ok(a.includes("-nodefaults") && a.includes("-no-user-config") && a.includes("-no-reboot"));
  const drives = after(a, "-drive");
  assert.equal(drives.length, 2);
  assert.match(drives[0], /^id=root,file=\/i\/rootfs\.ext4,.*readonly=on/);
  assert.match(drives[1], /^id=config,file=\/run\/bhatti\/x\/sb\/abc123\/config\.ext4,.*readonly=on/);
  const devices = after(a, "-device");
  assert.deepEqual(devices.slice(0, 2), ["virtio-blk-device,drive=root", "virtio-blk-device,drive=config"], "vda is the root, vdb the config drive");
  assert.ok(after(a, "-chardev").some((c) => c === `socket,id=agent,path=${spec.agentSocket},server=on,wait=off`));
  assert.ok(devices.includes("virtserialport,chardev=agent,name=bhatti.agent"));
  assert.equal(after(a, "-name")[0], "bhatti-abc123,process=bhatti-vm-abc123");
});

test("kernel command line: TCG gets tsc_early_khz, KVM does not; the probe flag only for probes", () => {
  assert.match(kernelCmdline({ accel: "tcg" }), /(^| )tsc_early_khz=\d+( |$)/);
  assert.doesNotMatch(kernelCmdline({ accel: "kvm" }), /tsc_early_khz/);
  assert.doesNotMatch(kernelCmdline({ accel: "kvm" }), /bhatti\.probe/);
  assert.match(kernelCmdline({ accel: "kvm", probe: true }), / bhatti\.probe$/);
  assert.match(kernelCmdline({ accel: "tcg" }), /console=ttyS0 .*root=\/dev\/vda/);
});

test("qemu argv (netvm): a networked sandbox gets a virtio-net NIC on the daemon's tap, never QEMU's scripts; none gets no NIC", () => {
  assert.equal(after(qemuArgs(spec), "-netdev").length, 0);
  const a = qemuArgs({ ...spec, net: { ifname: "bhc6336441", mac: "02:62:c6:33:64:42" } });
  assert.deepEqual(after(a, "-netdev"), ["tap,id=net0,ifname=bhc6336441,script=no,downscript=no"]);
  assert.ok(after(a, "-device").includes("virtio-net-device,netdev=net0,mac=02:62:c6:33:64:42"));
});
