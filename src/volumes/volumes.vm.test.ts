// Volumes on the vm engine (issue 14): an extra virtio-blk disk lohar mounts
// at boot; the data outlives the VM; read-only attachments are read-only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, createUser, api, cleanup } from "../testing/harness.js";
import { sh, IMAGES_DIR } from "../testing/sandbox-api.js";

test("[vm] a volume is a virtio-blk disk mounted at its path; its data outlives the VM; ro is read-only", { timeout: 300_000 }, async () => {
  const d = await startDaemon({ args: ["--engine", "vm", "--rate-limit", "0"], env: { BHATTI_IMAGES_DIR: IMAGES_DIR } });
  const k = createUser(d.dataDir, "vic");
  try {
    assert.equal((await api(d, "POST", "/volumes", { key: k, body: { name: "vd", size_mb: 32 } })).status, 201);
    const a = await api(d, "POST", "/sandboxes", { key: k, body: { name: "a", volumes: ["vd:/data"] } });
    assert.equal(a.status, 201, a.text);
    assert.equal((await sh(d, k, "a", "echo from-vm > /data/f && stat -c %u /data/f && grep -c ' /data ext4 ' /proc/mounts")).stdout, "1000\n1\n");
    assert.equal((await api(d, "DELETE", "/sandboxes/a", { key: k })).status, 204);
    const b = await api(d, "POST", "/sandboxes", { key: k, body: { name: "b", volumes: ["vd:/data:ro"] } });
    assert.equal(b.status, 201, b.text);
    assert.equal((await sh(d, k, "b", "cat /data/f; echo x > /data/g 2>/dev/null || echo read-only")).stdout, "from-vm\nread-only\n");
    assert.equal((await api(d, "DELETE", "/sandboxes/b", { key: k })).status, 204);
    // A guest kernel wrote it: the ns engine (the host's kernel) refuses to mount it.
    const ns = await api(d, "POST", "/sandboxes", { key: k, body: { name: "n", engine: "ns", volumes: ["vd:/data"] } });
    assert.equal(ns.status, 400);
    assert.match(ns.json.error, /was writable in a vm sandbox: the host does not mount a filesystem a guest kernel wrote/);
    assert.equal((await api(d, "DELETE", "/volumes/vd", { key: k })).status, 204);

    // The other way: written by an ns sandbox (ids shifted into its uid range), read in a VM as uid 1000's.
    assert.equal((await api(d, "POST", "/volumes", { key: k, body: { name: "nv", size_mb: 32 } })).status, 201);
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "n2", engine: "ns", volumes: ["nv:/data"] } })).status, 201);
    await sh(d, k, "n2", "echo from-ns > /data/f");
    assert.equal((await api(d, "DELETE", "/sandboxes/n2", { key: k })).status, 204);
    assert.equal((await api(d, "POST", "/sandboxes", { key: k, body: { name: "v2", volumes: ["nv:/data"] } })).status, 201);
    assert.equal((await sh(d, k, "v2", "cat /data/f; stat -c %u:%g /data/f")).stdout, "from-ns\n1000:1000\n");
    assert.equal((await api(d, "DELETE", "/sandboxes/v2", { key: k })).status, 204);
    assert.equal((await api(d, "DELETE", "/volumes/nv", { key: k })).status, 204);
  } finally {
    await d.stop();
    cleanup(d.dataDir);
  }
});
